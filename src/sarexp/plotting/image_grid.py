"""A PNG-ready grid of generated or real images in the data scale [−1, 1]."""

import math

import numpy as np


def to_display(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [−1, 1] → (N, H, W) or (N, H, W, 3) uint8.

    1 channel: grey levels; 2 channels: the wrapped phase atan2(channel 1, channel 0) mapped from [−π, π]
    (sarexp stores wrapped InSAR phase as cos φ, sin φ); 3 channels: RGB; more: the first channel.
    """
    channels = images.shape[1]
    if channels == 2:
        unit = (np.arctan2(images[:, 1], images[:, 0]) / np.pi + 1.0) / 2.0
    elif channels == 3:
        unit = (np.moveaxis(images, 1, -1) + 1.0) / 2.0
    else:
        unit = (images[:, 0] + 1.0) / 2.0
    return np.rint(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def image_grid(images: np.ndarray, columns: int = 8, padding: int = 2) -> np.ndarray:
    """Tile (N, C, H, W) images row by row, `columns` wide, with `padding` black pixels between them."""
    tiles = to_display(images)
    count, height, width = tiles.shape[:3]
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    grid = np.zeros(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, *tiles.shape[3:]), np.uint8
    )
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = tile
    return grid
