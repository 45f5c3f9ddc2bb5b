"""Atomic PNG writing for the colorization outputs."""

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from sarexp.plotting.image_grid import to_display


def write_png_atomic(path: Path, images: np.ndarray, tiled: bool = False) -> None:
    """One (1, C, H, W) image in [−1, 1], or an already tiled uint8 array (`tiled`), as a PNG at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = images if tiled else to_display(images)[0]
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(handle)
    Image.fromarray(np.ascontiguousarray(pixels)).save(temporary, format="PNG")
    os.replace(temporary, path)
