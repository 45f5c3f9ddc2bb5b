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


def check_bands(bands: Sequence[np.ndarray], sources: Sequence[object], shape: tuple[int, int],
                band_scale: float = 1.0) -> np.ndarray:
    """Single bands of one patch (e.g. VH and VV) stacked as float32 (B, H, W), after checking that each is one
    ``shape`` band of a real dtype shared with its partners and holds finite values.

    Integer bands (reBEN test fixtures are int16; some archives store dB × 100) are read as what they are:
    cast to float32 and multiplied by ``band_scale`` (``data.band_scale``, 1 by default); float bands are
    taken as dB unchanged."""
    for band, source in zip(bands, sources):
        if band.ndim != 2 or band.shape != shape:
            raise DataError(
                f"{source}: band of shape {band.shape}, expected one {shape[0]} × {shape[1]} band like its partners; "
                "replace the file or regenerate the dataset"
            )
        if not (np.issubdtype(band.dtype, np.floating) or np.issubdtype(band.dtype, np.integer)):
            raise DataError(f"{source}: {band.dtype} band, expected real-valued backscatter (dB as float or integer)")
        if band.dtype != bands[0].dtype:
            raise DataError(f"{source}: {band.dtype} band, but its partner {sources[0]} is {bands[0].dtype}")
        check_finite(band, source)
    stacked = np.stack(bands).astype(np.float32, copy=False)
    if np.issubdtype(bands[0].dtype, np.integer) and band_scale != 1.0:
        stacked = stacked * np.float32(band_scale)
    return stacked
