"""Checks of values read from disk, so bad input is reported naming its file (not later as a NaN loss or a
collate error without a name)."""

from collections.abc import Sequence

import numpy as np

from sarexp.errors import DataError


def check_finite(array: np.ndarray, source: object) -> np.ndarray:
    """``array`` unchanged, or DataError naming ``source`` when it holds NaN or ±Inf."""
    if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise DataError(
            f"{source}: contains NaN or infinite values ({bad} of {array.size}); fill or mask them in the data, "
            "or leave the file out"
        )
    return array


def check_bands(bands: Sequence[np.ndarray], sources: Sequence[object], shape: tuple[int, int]) -> np.ndarray:
    """Single bands of one patch (e.g. VH and VV) stacked as float32 (B, H, W), after checking that each is one
    ``shape`` band of a float dtype shared with its partners and holds finite values."""
    for band, source in zip(bands, sources):
        if band.ndim != 2 or band.shape != shape:
            raise DataError(
                f"{source}: band of shape {band.shape}, expected one {shape[0]} × {shape[1]} band like its partners; "
                "replace the file or regenerate the dataset"
            )
        if not np.issubdtype(band.dtype, np.floating):
            raise DataError(f"{source}: {band.dtype} band, expected floating-point backscatter (float32 dB)")
        if band.dtype != bands[0].dtype:
            raise DataError(f"{source}: {band.dtype} band, but its partner {sources[0]} is {bands[0].dtype}")
        check_finite(band, source)
    return np.stack(bands).astype(np.float32, copy=False)
