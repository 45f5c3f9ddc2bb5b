"""Reading rasters through GDAL (rasterio): whole small files for the dataset readers, windows of big scenes.

Every TIFF a GIS writes reads here — GDAL decodes LZW, DEFLATE, ZSTD, JPEG, PackBits, predictors, strips and
tiles, COGs, BigTIFF — and so do the other formats GDAL knows (VRT, PNG, JPEG, …), with their CRS, affine
transform, nodata, masks, band descriptions and metadata (:class:`RasterInfo`).

TIFFs written by tifffile from a NumPy array keep the array's layout in their own metadata, with one page per
leading index (an (8, 9, 2) array is 8 pages of 9 × 2): GDAL opens only the first page of such a file, so
:func:`read_tiff_bands` takes the page layout from tifffile (tags only, nothing decoded) and has GDAL decode
each page (``GTIFF_DIR:<n>:<path>``). A file tifffile wrote from an array records that array's shape, whose
band axis is not stored: there the smaller end axis is taken as the bands ((64, 64, 13) → 13 bands,
(13, 64, 64) → 13 bands), as before GDAL decoded them. Uncompressed TIFFs (BigEarthNet's many small patches) are
read by tifffile directly: the same values, 0.2 ms instead of GDAL's 1.3 ms per 120 × 120 file.
"""

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import tifffile
from rasterio.crs import CRS
from rasterio._err import CPLE_BaseError
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.transform import Affine
from rasterio.windows import Window

from sarexp.errors import DataError, first_line

TIFF_SUFFIXES = (".tif", ".tiff")
GDAL_ENV = {"GDAL_CACHEMAX": 64, "GDAL_NUM_THREADS": 1}  # MB of block cache: bounded memory per process


# What a failing GDAL call raises: rasterio's own errors, or GDAL's error classes unwrapped (a COG copy whose
# overview file hits a full disk raises CPLE_AppDefinedError directly).
GDAL_ERRORS = (RasterioError, CPLE_BaseError)


def gdal_reason(error: BaseException) -> str:
    """The most specific line of a GDAL error: rasterio's own message often only says to look at its causes."""
    causes = []
    while error is not None and len(causes) < 8:
        causes.append(error)
        error = error.__cause__ or error.__context__
    return first_line(causes[-1])


@dataclass(frozen=True)
class RasterInfo:
    """What a GIS needs to place a raster and what sarexp needs to read it in windows."""

    path: Path
    height: int
    width: int
    count: int
    dtype: str
    crs: CRS | None
    transform: Affine
    nodata: float | None
    descriptions: tuple[str | None, ...]
    tags: dict[str, str]

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width


@contextmanager
def open_raster(path: str | os.PathLike[str]) -> Iterator[Any]:
    """A rasterio dataset opened for reading (GDAL's cache bounded); DataError naming the file when it
    cannot be opened. A missing georeference is not an error here (callers decide)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file is missing")
    with rasterio.Env(**GDAL_ENV), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            dataset = rasterio.open(path)
        except GDAL_ERRORS as error:
            raise DataError(f"{path}: not a raster GDAL can read (truncated or corrupt? {gdal_reason(error)}); "
                            "replace it") from None
        with dataset:
            yield dataset


def info_of(dataset: Any, path: str | os.PathLike[str]) -> RasterInfo:
    """The :class:`RasterInfo` of an open dataset (metadata only)."""
    tags = {**dataset.tags(), **{f"TIFFTAG_{key}": value for key, value in dataset.tags(ns="TIFF").items()}}
    return RasterInfo(path=Path(path), height=dataset.height, width=dataset.width, count=dataset.count,
                      dtype=dataset.dtypes[0], crs=dataset.crs, transform=dataset.transform, nodata=dataset.nodata,
                      descriptions=tuple(dataset.descriptions), tags=tags)


def raster_info(path: str | os.PathLike[str]) -> RasterInfo:
    """:func:`info_of` a file."""
    with open_raster(path) as dataset:
        return info_of(dataset, path)


@dataclass(frozen=True)
class WindowData:
    """A window's bands (C, h, w, stored dtype; 0 where invalid), which pixels are valid (h, w), and how many
    pixels held NaN or ±Inf (invalid too: reported, since GDAL's nodata does not cover them)."""

    values: np.ndarray
    valid: np.ndarray
    nonfinite: int


def read_window(dataset: Any, window: Window, bands: list[int], path: str | os.PathLike[str] = "") -> WindowData:
    """Bands (1-based) of a window that may reach outside the raster. Outside the raster, GDAL's masks (nodata,
    alpha, internal masks) and non-finite values count as invalid."""
    row, col = int(window.row_off), int(window.col_off)
    height, width = int(window.height), int(window.width)
    values = np.zeros((len(bands), height, width), dtype=dataset.dtypes[bands[0] - 1])
    valid = np.zeros((height, width), dtype=bool)
    top, left = max(row, 0), max(col, 0)
    bottom, right = min(row + height, dataset.height), min(col + width, dataset.width)
    if bottom <= top or right <= left:
        return WindowData(values, valid, 0)
    inside = Window(left, top, right - left, bottom - top)
    target = (slice(None), slice(top - row, bottom - row), slice(left - col, right - col))
    try:
        values[target] = dataset.read(bands, window=inside)
        masks = dataset.read_masks(bands, window=inside)
    except GDAL_ERRORS as error:
        raise DataError(f"{path}: cannot read rows {top}:{bottom}, columns {left}:{right} (truncated or "
                        f"corrupt? {gdal_reason(error)}); replace the file") from None
    inner = (masks > 0).all(axis=0)
    nonfinite = 0
    if np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values[target]).all(axis=0)
        nonfinite = int(np.count_nonzero(inner & ~finite))
        inner &= finite
    valid[target[1:]] = inner
    values[:, ~valid] = 0
    return WindowData(values, valid, nonfinite)


def read_tiff_bands(path: str | os.PathLike[str]) -> np.ndarray:
    """All bands of a TIFF as (bands, H, W) in the stored dtype, decoded by GDAL (uncompressed pages by tifffile);
    DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file is missing; the dataset layout is incomplete")
    layout = _tifffile_layout(path)
    if layout is None:  # not parsed by tifffile: GDAL's bands-first layout
        array = _decoded(path, str(path))
        return array[None] if array.ndim == 2 else array
    pages, shape, axes, shaped, array = layout
    try:
        if array is None:  # compressed: GDAL decodes each page into the array tifffile describes
            pages_read = [_decoded(path, f"GTIFF_DIR:{index + 1}:{path}", page_axes) for index, page_axes in pages]
            array = np.stack(pages_read).reshape(shape)
    except ValueError as error:
        raise DataError(f"{path}: not a readable TIFF (pages do not match its recorded shape: {error}); replace it "
                        "or regenerate the dataset") from None
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3:
        bands_last = array.shape[-1] < array.shape[0] if shaped else axes.endswith("S")  # S: pixel-interleaved
        return np.moveaxis(array, -1, 0) if bands_last else array
    raise DataError(f"{path}: a {array.ndim}-D TIFF (axes {axes}, shape {array.shape}); expected bands × rows × "
                    "columns")


Layout = tuple[list[tuple[int, str]], tuple[int, ...], str, bool, np.ndarray | None]


def _tifffile_layout(path: Path) -> Layout | None:
    """((directory index, axes) of each page, shape, axes, written by tifffile from an array, the array when it is
    stored uncompressed) of the first series; None when tifffile cannot parse the file (GDAL may still read it).
    Uncompressed pixels are read here directly (7× faster than opening the file with GDAL, for datasets of many
    small patches); everything compressed is left to GDAL."""
    try:
        with tifffile.TiffFile(path) as tiff:
            series = tiff.series[0]
            first_axes = series.pages[0].axes
            pages = [(page.index, getattr(page, "axes", first_axes)) for page in series.pages]
            array = None
            if all(getattr(page, "keyframe", page).compression == tifffile.COMPRESSION.NONE for page in series.pages):
                try:
                    array = np.asarray(series.asarray())
                except Exception:  # a truncated file: GDAL reports it
                    array = None
            return pages, tuple(series.shape), series.axes, bool(tiff.is_shaped), array
    except Exception:  # tifffile raises many types on files it does not parse; GDAL decides then
        return None


def _decoded(path: Path, name: str, page_axes: str = "SYX") -> np.ndarray:
    """The GDAL dataset ``name`` (a file or one of its TIFF directories) decoded, in the page's own axis order
    (``YX``, ``SYX`` or pixel-interleaved ``YXS``)."""
    with rasterio.Env(**GDAL_ENV), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(name) as dataset:
                array = dataset.read()
        except GDAL_ERRORS as error:
            raise DataError(f"{path}: not a readable TIFF (truncated or corrupt? {gdal_reason(error)}); replace it or "
                            "regenerate the dataset") from None
    if array.shape[0] == 1 and "S" not in page_axes:
        return array[0]
    return np.moveaxis(array, 0, -1) if page_axes.endswith("S") else array


def read_geotiff_band(path: str | os.PathLike[str]) -> np.ndarray:
    """The first band of a GeoTIFF (H, W) in its stored dtype; DataError naming the file when it is unreadable."""
    return read_tiff_bands(path)[0]


def north_up(left: float, top: float, pixel_size: float) -> Affine:
    """The affine transform of a north-up grid of square pixels whose upper-left corner is (left, top)."""
    return Affine(pixel_size, 0.0, left, 0.0, -pixel_size, top)


def write_geotiff(path: str | os.PathLike[str], bands: np.ndarray, *, crs: CRS | str | int | None,
                  transform: Affine, nodata: float | None = None, descriptions: list[str] | None = None,
                  compress: str | None = None) -> None:
    """Write a small (C, H, W) or (H, W) array as one GeoTIFF (whole, not atomically: datasets are written
    into a staging directory that is published as a whole)."""
    bands = bands[None] if bands.ndim == 2 else bands
    if isinstance(crs, int):
        crs = CRS.from_epsg(crs)
    profile = {"driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2], "count": bands.shape[0],
               "dtype": bands.dtype.name, "crs": crs, "transform": transform, "nodata": nodata}
    if compress:
        profile["compress"] = compress
    with rasterio.Env(**GDAL_ENV), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dataset:
            dataset.write(bands)
            for index, description in enumerate(descriptions or [], start=1):
                dataset.set_band_description(index, description)
