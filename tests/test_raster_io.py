"""Rasters as GIS software writes them (issue 22, item 5): GDAL's compressions, predictors and tiles read through
every reader, and integer-stored BigEarthNet bands are read as what they are."""

from pathlib import Path

import numpy as np
import pytest
import rasterio

from sarexp.data.bigearthnet import BigEarthNetV2Dataset
from sarexp.data.image_folder import read_image
from sarexp.data.synthetic.bigearthnet import v2_folder
from sarexp.errors import DataError
from sarexp.io.raster import north_up, raster_info, read_geotiff_band, read_tiff_bands, read_window

PATCH = "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_61_39"
UTM = north_up(300000.0, 5400000.0, 10.0)


def gdal_tiff(path: Path, bands: np.ndarray, **creation: object) -> Path:
    """A GeoTIFF written by GDAL itself with the given creation options (compression, predictor, tiles)."""
    profile = {"driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2], "count": bands.shape[0],
               "dtype": bands.dtype.name, "crs": "EPSG:32633", "transform": UTM, **creation}
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(bands)
    return path


CREATION = {
    "lzw": {"compress": "lzw"},
    "deflate-predictor": {"compress": "deflate", "predictor": 2},
    "zstd-tiled": {"compress": "zstd", "predictor": 2, "tiled": True, "blockxsize": 16, "blockysize": 16},
    "lzw-float-predictor": {"compress": "lzw", "predictor": 3},
    "packbits-band-sequential": {"compress": "packbits", "interleave": "band"},
}


@pytest.mark.parametrize("name", sorted(CREATION))
def test_gdal_compressed_tiffs_read_in_every_reader(tmp_path, name):
    rng = np.random.default_rng(0)
    dtype = np.float32 if "float" in name else np.int16
    bands = (rng.normal(-15, 3, (3, 40, 48)) * (1 if dtype == np.float32 else 100)).astype(dtype)
    path = gdal_tiff(tmp_path / f"{name}.tif", bands, **CREATION[name])
    np.testing.assert_array_equal(read_image(path), bands)
    np.testing.assert_array_equal(read_tiff_bands(path), bands)
    np.testing.assert_array_equal(read_geotiff_band(path), bands[0])
    info = raster_info(path)
    assert info.crs.to_epsg() == 32633 and info.transform == UTM and info.shape == (40, 48)


def test_int16_bigearthnet_bands_read_as_values_and_band_scale_applies(tmp_path):
    folder = tmp_path / v2_folder(PATCH) / PATCH
    folder.mkdir(parents=True)
    vh, vv = np.full((1, 120, 120), -1950, np.int16), np.full((1, 120, 120), -1260, np.int16)
    for polarisation, band in (("VH", vh), ("VV", vv)):  # as torchgeo's reBEN fixtures: int16, LZW
        gdal_tiff(folder / f"{PATCH}_{polarisation}.tif", band, compress="lzw")
    labels = np.zeros((1, 19), np.float32)
    as_stored = BigEarthNetV2Dataset(tmp_path, [PATCH], labels)[0]["image_db"]
    assert as_stored.dtype.is_floating_point and as_stored[:, 0, 0].tolist() == [-1950.0, -1260.0]
    scaled = BigEarthNetV2Dataset(tmp_path, [PATCH], labels, band_scale=0.01)[0]["image_db"]
    np.testing.assert_allclose(scaled[:, 0, 0].numpy(), [-19.5, -12.6], rtol=1e-6)


def test_windows_reach_outside_the_raster_and_masks_count(tmp_path):
    bands = np.arange(2 * 10 * 12, dtype=np.float32).reshape(2, 10, 12)
    bands[0, 2, 3] = np.nan
    bands[:, 0, :] = -9999.0
    path = gdal_tiff(tmp_path / "nodata.tif", bands, nodata=-9999.0, compress="deflate")
    with rasterio.open(path) as dataset:
        window = read_window(dataset, rasterio.windows.Window(-2, -1, 6, 5), [1, 2], path)
    values, valid = window.values, window.valid
    assert window.nonfinite == 1
    assert values.shape == (2, 5, 6) and valid.shape == (5, 6)
    assert not valid[:, :2].any() and not valid[0].any() and not valid[1].any()  # outside, nodata row 0
    assert not valid[3, 5] and valid[2, 2] and values[1, 2, 2] == bands[1, 1, 0]  # NaN at (2, 3) is invalid


def test_a_file_gdal_cannot_open_is_one_line(tmp_path):
    path = tmp_path / "not.tif"
    path.write_bytes(b"II*\x00garbage")
    with pytest.raises(DataError, match="not a readable TIFF|not a raster GDAL can read") as error:
        read_tiff_bands(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_a_cog_that_cannot_be_written_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """GDAL's COG copy raises its own error class, not rasterio's, when the overview file hits a full disk
    (seen on an 8192² 31-band HSI scene): it must still be one line, with no half-written output."""
    from rasterio._err import CPLE_AppDefinedError

    from sarexp.errors import StorageError
    from sarexp.io import cog

    staged = cog.StagedRaster(tmp_path / "staging.tif", cog.RasterSpec(count=2, dtype="float32", nodata=-1.0),
                              (64, 64), rasterio.crs.CRS.from_epsg(32632), north_up(500000.0, 4650000.0, 10.0))
    staged.write(np.ones((2, 64, 64), dtype=np.float32), 0, 0)

    def full_disk(source, target, **options):
        Path(target).write_bytes(b"partial")
        raise CPLE_AppDefinedError(1, 1, ".out.tif.cog-tmp.ovr.tmp: WriteEncodedTile/Strip() failed.")

    monkeypatch.setattr(cog.rasterio.shutil, "copy", full_disk)
    with pytest.raises(StorageError) as raised:
        staged.publish(tmp_path / "out.tif", compress="deflate")
    message = str(raised.value)
    assert "\n" not in message and str(tmp_path / "out.tif") in message and "GiB free" in message
    assert sorted(path.name for path in tmp_path.iterdir()) == ["staging.tif"]
