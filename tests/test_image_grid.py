"""The PNG grid of samples: layout and the display of 1-, 2- (phase) and 3-channel images."""

import numpy as np

from sarexp.plotting.image_grid import image_grid, to_display


def test_grid_tiles_images_row_by_row_with_padding():
    images = np.stack([np.full((1, 4, 4), value) for value in (-1.0, 0.0, 1.0)]).astype(np.float32)
    grid = image_grid(images, columns=2, padding=1)
    assert grid.shape == (2 * 5 + 1, 2 * 5 + 1) and grid.dtype == np.uint8
    assert grid[1, 1] == 0 and grid[1, 6] == 128 and grid[6, 1] == 255 and grid[6, 6] == 0  # last cell empty


def test_two_channels_are_shown_as_the_wrapped_phase():
    phase = np.array([-np.pi + 1e-6, 0.0, np.pi / 2])
    images = np.stack([np.cos(phase), np.sin(phase)], axis=1)[:, :, None, None]
    np.testing.assert_array_equal(to_display(images)[:, 0, 0], [0, 128, 191])
    assert to_display(np.zeros((1, 3, 2, 2))).shape == (1, 2, 2, 3)
