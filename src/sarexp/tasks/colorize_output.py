"""Atomic PNG writing for the colorization outputs."""

from pathlib import Path

import numpy as np
from PIL import Image

from sarexp.io.atomic import write_file_atomically
from sarexp.plotting.image_grid import to_display


def write_png_atomic(path: Path, images: np.ndarray, tiled: bool = False) -> None:
    """One (1, C, H, W) image in [−1, 1], or an already tiled uint8 array (`tiled`), as a PNG at `path`."""
    pixels = images if tiled else to_display(images)[0]
    write_file_atomically(path, lambda stream: Image.fromarray(np.ascontiguousarray(pixels)).save(stream, format="PNG"))
