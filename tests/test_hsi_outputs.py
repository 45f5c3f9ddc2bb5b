"""Prediction outputs: ARAD-format cubes the reader reads back, written whole or tile by tile; quicklook parts."""

from pathlib import Path

import torch

from sarexp.data.arad_files import read_cube, write_cube_tiles
from sarexp.plotting.hsi import false_colour, probe_pixels


def test_cubes_written_tile_by_tile_read_back(tmp_path: Path) -> None:
    cube = torch.rand(31, 12, 20).numpy()
    tiles = [(top, left, cube[:, top:top + 8, left:left + 8]) for top in (0, 8) for left in (0, 8, 16)]
    write_cube_tiles(tmp_path / "a.mat", cube.shape, tiles)
    torch.testing.assert_close(torch.from_numpy(read_cube(tmp_path / "a.mat")), torch.from_numpy(cube))
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_false_colour_and_probe_pixels() -> None:
    cube = torch.zeros(31, 4, 5).numpy()
    cube[24] = 1.0  # 640 nm → red
    image = false_colour(cube)
    assert image.shape == (4, 5, 3) and image[..., 0].min() == 1.0 and image[..., 1:].max() == 0.0
    pixels = probe_pixels(10, 20, 4)
    assert len(set(pixels)) == 4 and all(0 <= r < 10 and 0 <= c < 20 for r, c in pixels)
