"""GeoTIFFs read and written with tifffile (no GDAL needed): single-band float32 bands, and any TIFF as bands.

Sentinel-1 patches of BigEarthNet are one band per file. Writing adds the three GeoTIFF tags a GIS needs to
place the raster: ModelPixelScale (33550), ModelTiepoint (33922) and the GeoKeyDirectory (34735) with a
projected CRS given by its EPSG code (UTM zones for BigEarthNet).

Multi-band TIFFs come pixel-interleaved (planar configuration 1: tifffile axes ``YXS``, e.g. EuroSAT's 13
bands as written by GDAL) or band-sequential (separate planes ``SYX`` or one page per band ``QYX``);
:func:`read_tiff_bands` returns both as (bands, H, W) whatever the band count. A file tifffile wrote from a
NumPy array records that array's shape, whose band axis is not stored: there the smaller end axis is taken
as the bands ((64, 64, 13) → 13 bands, (13, 64, 64) → 13 bands).
"""

import os
from pathlib import Path

import numpy as np
import tifffile

from sarexp.data.input_checks import check_finite
from sarexp.errors import DataError, first_line

_MODEL_PIXEL_SCALE = 33550
_MODEL_TIEPOINT = 33922
_GEO_KEY_DIRECTORY = 34735
_GT_MODEL_TYPE_PROJECTED = (1024, 0, 1, 1)
_GT_RASTER_TYPE_PIXEL_IS_AREA = (1025, 0, 1, 1)
_PROJECTED_CRS_KEY = 3072


def write_geotiff(
    path: str | os.PathLike[str],
    band: np.ndarray,
    *,
    upper_left: tuple[float, float],
    pixel_size: float = 10.0,
    epsg: int = 32633,
) -> None:
    """Write a 2-D float32 band georeferenced at ``upper_left`` (x, y) in the CRS ``epsg``, north up."""
    if band.ndim != 2:
        raise ValueError(f"a GeoTIFF band must be 2-D, got shape {band.shape}")
    geo_keys = (1, 1, 0, 3, *_GT_MODEL_TYPE_PROJECTED, *_GT_RASTER_TYPE_PIXEL_IS_AREA, _PROJECTED_CRS_KEY, 0, 1, epsg)
    tags = [
        (_MODEL_PIXEL_SCALE, "d", 3, (pixel_size, pixel_size, 0.0), True),
        (_MODEL_TIEPOINT, "d", 6, (0.0, 0.0, 0.0, upper_left[0], upper_left[1], 0.0), True),
        (_GEO_KEY_DIRECTORY, "H", len(geo_keys), geo_keys, True),
    ]
    tifffile.imwrite(path, band.astype(np.float32), extratags=tags, photometric="minisblack")


def read_tiff_bands(path: str | os.PathLike[str]) -> np.ndarray:
    """All bands of a TIFF as (bands, H, W) in the stored dtype; DataError naming the file when unreadable."""
    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tiff:
            series = tiff.series[0]
            axes = series.axes
            shaped = tiff.is_shaped
            array = np.asarray(series.asarray())
    except FileNotFoundError:
        raise DataError(f"{path}: file is missing; the dataset layout is incomplete") from None
    except Exception as error:  # tifffile raises several types for damaged files
        raise DataError(
            f"{path}: not a readable TIFF (truncated or corrupt? {first_line(error)}); replace it or regenerate "
            "the dataset"
        ) from None
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3:
        bands_last = array.shape[-1] < array.shape[0] if shaped else axes.endswith("S")  # S: pixel-interleaved
        return np.moveaxis(array, -1, 0) if bands_last else array
    raise DataError(f"{path}: a {array.ndim}-D TIFF (axes {axes}, shape {array.shape}); expected bands × rows × columns")


def read_geotiff_band(path: str | os.PathLike[str]) -> np.ndarray:
    """The first band of a GeoTIFF as float32 (H, W); DataError naming the file when it is unreadable."""
    path = Path(path)
    band = check_finite(read_tiff_bands(path)[0], path)
    return band.astype(np.float32, copy=False)
