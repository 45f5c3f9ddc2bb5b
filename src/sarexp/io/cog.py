"""Writing big rasters window by window and publishing them as Cloud-Optimized GeoTIFFs.

A :class:`StagedRaster` is a tiled GeoTIFF that is filled one window at a time (memory bounded by the window,
GDAL's block cache bounded by :data:`~sarexp.io.raster.GDAL_ENV`), then :meth:`StagedRaster.publish` has
GDAL's COG driver copy it into a COG — internal tiles, overviews, the chosen compression with a predictor —
beside the target and renames it over the target: a reader sees the previous file or the finished one, never
half of one. Band descriptions, nodata, a colour table, metadata tags and a per-dataset mask (for 8-bit RGB,
where no value is free to mean nodata) travel into the COG.
"""

import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine
from rasterio.windows import Window

from sarexp.errors import StorageError
from sarexp.io.atomic import describe_write_error
from sarexp.io.raster import GDAL_ENV, GDAL_ERRORS, gdal_reason

STAGING_OPTIONS = {"tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "zstd", "zstd_level": 1,
                   "bigtiff": "if_safer"}


@dataclass(frozen=True)
class RasterSpec:
    """Bands of an output raster: dtype, nodata (None: a per-dataset mask marks missing pixels), band
    descriptions, an optional colour table of band 1, how overviews resample, and metadata tags."""

    count: int
    dtype: str
    nodata: float | None
    descriptions: tuple[str, ...] = ()
    colormap: dict[int, tuple[int, int, int, int]] | None = None
    resampling: str = "average"
    rgb: bool = False
    tags: dict[str, str] = field(default_factory=dict)


class StagedRaster:
    """A tiled GeoTIFF at ``staging`` on the grid (height, width, crs, transform), written in windows."""

    def __init__(self, staging: Path, spec: RasterSpec, shape: tuple[int, int], crs: CRS | None,
                 transform: Affine) -> None:
        self.staging = staging
        self.spec = spec
        profile = {"driver": "GTiff", "height": shape[0], "width": shape[1], "count": spec.count,
                   "dtype": spec.dtype, "crs": crs, "transform": transform, "nodata": spec.nodata,
                   **STAGING_OPTIONS}
        if spec.rgb:
            profile["photometric"] = "rgb"
        self._env = rasterio.Env(**GDAL_ENV, GDAL_TIFF_INTERNAL_MASK=True)
        self._env.__enter__()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self.dataset = rasterio.open(staging, "w", **profile)
        except (*GDAL_ERRORS, OSError) as error:
            self._env.__exit__(None, None, None)
            raise StorageError(f"could not create {staging} ({gdal_reason(error)}); free space or fix permissions, "
                               "then rerun") from None
        for index, description in enumerate(spec.descriptions, start=1):
            self.dataset.set_band_description(index, description)
        if spec.colormap:
            self.dataset.write_colormap(1, spec.colormap)
        if spec.tags:
            self.dataset.update_tags(**spec.tags)

    def write(self, values: np.ndarray, top: int, left: int, valid: np.ndarray | None = None) -> None:
        """Write (count, h, w) values at (top, left); with no nodata value, ``valid`` (h, w) sets the mask."""
        window = Window(left, top, values.shape[2], values.shape[1])
        try:
            self.dataset.write(values.astype(self.spec.dtype, copy=False), window=window)
            if self.spec.nodata is None and valid is not None:
                self.dataset.write_mask(np.where(valid, 255, 0).astype(np.uint8), window=window)
        except (*GDAL_ERRORS, OSError) as error:
            self.close()
            raise StorageError(f"could not write {self.staging} ({gdal_reason(error)}); free space, then rerun: "
                               "the finished tiles are kept") from None

    def close(self) -> None:
        if not self.dataset.closed:
            self.dataset.close()
            self._env.__exit__(None, None, None)

    def publish(self, path: Path, compress: str, overview_resampling: str | None = None) -> None:
        """Close, then write the COG (tiles 512, overviews, ``compress`` with a predictor) beside ``path`` and
        rename it to ``path``; the staging file is removed."""
        self.close()
        temporary = path.with_name(f".{path.name}.cog-tmp")
        options = {"driver": "COG", "compress": compress, "blocksize": 512, "bigtiff": "if_safer",
                   "overview_resampling": overview_resampling or self.spec.resampling}
        if compress.lower() in ("deflate", "lzw", "zstd") and not self.spec.colormap:
            options["predictor"] = "yes"
        try:
            with rasterio.Env(**GDAL_ENV), warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                rasterio.shutil.copy(self.staging, temporary, **options)
            os.replace(temporary, path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise StorageError(describe_write_error(path, error)) from None
        except GDAL_ERRORS as error:
            temporary.unlink(missing_ok=True)
            free_gib = shutil.disk_usage(path.parent).free / 2**30
            raise StorageError(f"could not write {path} ({gdal_reason(error)}; {free_gib:.1f} GiB free there, and the "
                               "COG driver needs room for its overviews): free space or fix permissions, then rerun: "
                               "the finished tiles are kept") from None
        self.staging.unlink(missing_ok=True)
