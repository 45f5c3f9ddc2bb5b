"""Single-band float32 GeoTIFFs, read and written with tifffile (no GDAL needed).

Sentinel-1 patches of BigEarthNet are one band per file. Writing adds the three GeoTIFF tags a GIS needs to
place the raster: ModelPixelScale (33550), ModelTiepoint (33922) and the GeoKeyDirectory (34735) with a
projected CRS given by its EPSG code (UTM zones for BigEarthNet).
"""

import os
from pathlib import Path

import numpy as np
import tifffile

from sarexp.errors import DataError

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


def read_geotiff_band(path: str | os.PathLike[str]) -> np.ndarray:
    """The first band of a GeoTIFF as float32 (H, W); DataError naming the file when it is unreadable."""
    path = Path(path)
    try:
        band = tifffile.imread(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file is missing; the dataset layout is incomplete") from None
    except Exception as error:  # tifffile raises several types for damaged files
        raise DataError(f"{path}: not a readable GeoTIFF ({error}); replace it or regenerate the dataset") from None
    band = np.asarray(band)
    if band.ndim == 3:
        band = band[0]
    if band.ndim != 2:
        raise DataError(f"{path}: expected a single-band image, got an array of shape {band.shape}")
    band = band.astype(np.float32, copy=False)
    if not np.isfinite(band).all():
        raise DataError(f"{path}: contains NaN or infinite values")
    return band
