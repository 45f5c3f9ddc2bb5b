"""ARAD-1K (NTIRE 2022 spectral recovery) files: cubes, RGB images and split lists, read as MST++ reads them.

Layout: ``<root>/Train_Spec/ARAD_1K_NNNN.mat``, ``<root>/Train_RGB/ARAD_1K_NNNN.jpg``,
``<root>/split_txt/{train,valid}_list.txt`` (one scene id per line) and ``<root>/Test_RGB/*.jpg``.

A ``.mat`` is a MATLAB v7.3 file, i.e. HDF5 behind a 512-byte MATLAB header. MATLAB stores the H × W × 31
cube column-major, so h5py sees the dataset ``cube`` with its axes reversed, (31, W, H). MST++ reads it as
``np.float32(mat['cube'])`` and transposes axes [0, 2, 1] to (31, H, W); :func:`read_cube` does exactly
that, values as stored (no rescaling). RGB: read as RGB and min–max normalised over the whole image
(all three channels together), as MST++'s data sets do, to float32 (3, H, W).
"""

import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from sarexp.errors import DataError, StorageError
from sarexp.io.atomic import describe_write_error

SPEC_DIR = "Train_Spec"
RGB_DIR = "Train_RGB"
TEST_RGB_DIR = "Test_RGB"
SPLIT_DIR = "split_txt"
SPLIT_FILES = {"train": "train_list.txt", "validation": "valid_list.txt"}
RGB_SUFFIXES = (".jpg", ".jpeg", ".png")


def _checked_cube(path: Path, bands: int, read: bool) -> np.ndarray | tuple[int, ...]:
    """The stored ``cube`` (float32 when ``read``, else only its shape), with the layout checks."""
    if not path.is_file():
        raise DataError(f"{path}: cube file not found; every scene in the split lists needs Train_Spec/<id>.mat")
    try:
        with h5py.File(path, "r") as mat:
            if "cube" not in mat:
                raise DataError(f"{path}: no dataset 'cube' (found {sorted(mat.keys())}); "
                                "ARAD files hold the spectra under 'cube'")
            shape = mat["cube"].shape
            if len(shape) != 3 or shape[0] != bands:
                raise DataError(f"{path}: 'cube' has shape {shape} as stored, expected ({bands}, W, H) "
                                f"({bands} bands); set data.bands if the data has another band count")
            return np.float32(np.array(mat["cube"])) if read else shape
    except OSError as error:
        raise DataError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({error})") from None


def read_cube(path: Path, bands: int = 31) -> np.ndarray:
    """float32 (bands, H, W) from the ``cube`` dataset of a MATLAB v7.3 file; DataError naming the file."""
    cube = _checked_cube(Path(path), bands, read=True)
    if not np.isfinite(cube).all():
        raise DataError(f"{path}: 'cube' contains NaN or infinite values")
    return np.ascontiguousarray(np.transpose(cube, [0, 2, 1]))


def cube_size(path: Path, bands: int = 31) -> tuple[int, int]:
    """(H, W) of a cube from the file's metadata only, with the checks of :func:`read_cube`."""
    shape = _checked_cube(Path(path), bands, read=False)
    return int(shape[2]), int(shape[1])


def read_rgb(path: Path) -> np.ndarray:
    """float32 (3, H, W) in [0, 1], min–max normalised over the image; DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: RGB image not found")
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    except Exception as error:  # PIL raises several types for damaged files
        raise DataError(f"{path}: not a readable image ({type(error).__name__}: {error})") from None
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        raise DataError(f"{path}: constant image, cannot be min–max normalised")
    return np.ascontiguousarray(((pixels - low) / (high - low)).transpose(2, 0, 1))


def read_split(path: Path) -> list[str]:
    """Scene ids of a split list (one per line, blank lines skipped); DataError when missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: split list not found; an ARAD-1K root holds split_txt/train_list.txt "
                        "and valid_list.txt")
    ids = sorted(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not ids:
        raise DataError(f"{path}: split list is empty")
    return ids


def _matlab_header() -> bytes:
    """The 128-byte header MATLAB writes in the user block of a v7.3 file."""
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {time.strftime('%a %b %d %H:%M:%S %Y')} " \
           "HDF5 schema 1.00 ."
    return text.encode("ascii").ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"


def write_cube(path: Path, cube: np.ndarray, wavelengths: np.ndarray | None = None) -> None:
    """Write a (bands, H, W) cube as ARAD does (MATLAB v7.3 ``cube`` of class single), atomically.

    The dataset is stored as (bands, W, H) — what MATLAB's column-major H × W × bands looks like to HDF5 —
    so :func:`read_cube` (and MST++'s reader) gets the cube back.
    """
    write_cube_tiles(path, cube.shape, [(0, 0, cube)], wavelengths)


def write_cube_tiles(path: Path, shape: tuple[int, int, int], tiles: Iterable[tuple[int, int, np.ndarray]],
                     wavelengths: np.ndarray | None = None) -> None:
    """:func:`write_cube` of a cube of ``shape`` (bands, H, W) given as (top, left, (bands, h, w)) tiles, so a
    cube bigger than memory is written tile by tile."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    bands, height, width = shape
    try:
        with h5py.File(staging, "w", userblock_size=512) as mat:
            stored = mat.create_dataset("cube", shape=(bands, width, height), dtype=np.float32)
            for top, left, tile in tiles:
                window = (slice(None), slice(left, left + tile.shape[2]), slice(top, top + tile.shape[1]))
                stored[window] = np.transpose(tile, [0, 2, 1]).astype(np.float32)
            stored.attrs["MATLAB_class"] = np.bytes_("single")
            if wavelengths is not None:
                stored_bands = mat.create_dataset("bands", data=np.asarray(wavelengths, dtype=np.float64)[None, :])
                stored_bands.attrs["MATLAB_class"] = np.bytes_("double")
        with open(staging, "r+b") as raw:
            raw.write(_matlab_header())
        os.replace(staging, path)
    except OSError as error:  # disk full, quota, permissions: one line, the previous file intact
        raise StorageError(describe_write_error(path, error)) from None
    finally:
        staging.unlink(missing_ok=True)


def rgb_files(path: Path) -> list[Path]:
    """An image file, or the sorted images (jpg, jpeg, png) of a directory; DataError when there are none."""
    path = Path(path)
    if path.is_file():
        return [path]
    files = sorted(p for p in path.glob("*") if p.suffix.lower() in RGB_SUFFIXES) if path.is_dir() else []
    if not files:
        raise DataError(f"data.predict_inputs: {path} is neither an RGB image nor a directory of .jpg/.png images")
    return files


def rgb_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image from its header; DataError naming the file when it cannot be opened."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: RGB image not found")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as error:
        raise DataError(f"{path}: not a readable image ({type(error).__name__}: {error})") from None
    return height, width
