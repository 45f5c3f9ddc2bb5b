"""Bad input files, written by the tests as other projects write them, give one DataError line naming the file:
BigEarthNet bands of the wrong shape or dtype, pixel-interleaved multi-band TIFFs, one-hot HDF5 labels,
NaN/Inf values, and truncated or corrupt files of every format the readers take."""

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from sarexp.data.bigearthnet import (
    BigEarthNetV1Dataset,
    BigEarthNetV1ZarrDataset,
    BigEarthNetV2Dataset,
    BigEarthNetV2DataModule,
)
from sarexp.data.hdf5_images import HDF5ImageDataset
from sarexp.data.image_folder import ImageFolderDataset, read_image
from sarexp.data.scaling import ImageScaling
from sarexp.data.sen12flood import SEN12FloodDataset
from sarexp.data.synthetic.bigearthnet import v2_folder
from sarexp.data.bigearthnet_zarr import convert_benv1_to_zarr
from sarexp.errors import DataError
from sarexp.io.raster import north_up, read_geotiff_band, read_tiff_bands, write_geotiff

V1_PATCH = "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_61_39"
LABELS = {"labels": ["Pastures"]}
UTM = north_up(300000.0, 5400000.0, 10.0)


def one_line(error: pytest.ExceptionInfo, path: object) -> str:
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message
    return message


def gdal_like_tiff(path: Path, bands_last: np.ndarray) -> Path:
    """A pixel-interleaved TIFF without tifffile's shape metadata, as GDAL writes EuroSAT's 13 bands."""
    tifffile.imwrite(path, bands_last, photometric="minisblack", planarconfig="contig", metadata=None)
    return path


def v1_patch(root: Path, vh: np.ndarray, vv: np.ndarray) -> Path:
    folder = root / V1_PATCH
    folder.mkdir(parents=True)
    (folder / f"{V1_PATCH}_labels_metadata.json").write_text(json.dumps(LABELS))
    for polarisation, band in (("VH", vh), ("VV", vv)):
        tifffile.imwrite(folder / f"{V1_PATCH}_{polarisation}.tif", band, photometric="minisblack")
    return folder


def band(value: float = -15.0, size: int = 120, dtype=np.float32) -> np.ndarray:
    return np.full((size, size), value, dtype=dtype)


# BigEarthNet v1 / v2: shape and dtype checked at read time, naming the file


@pytest.mark.parametrize("vv, expected", [
    (band(size=100), r"band of shape \(100, 100\), expected one 120 × 120 band"),
    (band(dtype=np.float64), "float64 band, but its partner .*_VH.tif is float32"),
    (band(dtype=np.int16), "int16 band, but its partner .*_VH.tif is float32"),
    (band(dtype=np.complex64), "complex64 band, expected real-valued backscatter"),
    (np.full((120, 120, 2), -15.0, dtype=np.float32), r"band of shape \(2, 120, 120\)"),
])
def test_benv1_band_that_differs_is_named(tmp_path, vv, expected):
    folder = v1_patch(tmp_path, band(), vv)
    with pytest.raises(DataError, match=expected) as error:
        BigEarthNetV1Dataset(tmp_path, [V1_PATCH])[0]
    one_line(error, folder / f"{V1_PATCH}_VV.tif")


def test_benv1_good_patch_reads(tmp_path):
    v1_patch(tmp_path, band(-20.0), band(-12.0))
    item = BigEarthNetV1Dataset(tmp_path, [V1_PATCH])[0]
    assert item["image_db"].shape == (2, 120, 120) and float(item["image_db"][1, 0, 0]) == -12.0


def test_benv2_band_of_another_size_is_named(tmp_path):
    folder = tmp_path / v2_folder(V1_PATCH) / V1_PATCH
    folder.mkdir(parents=True)
    write_geotiff(folder / f"{V1_PATCH}_VH.tif", band(), crs=32633, transform=UTM)
    write_geotiff(folder / f"{V1_PATCH}_VV.tif", band(size=128), crs=32633, transform=UTM)
    with pytest.raises(DataError, match="expected one 120 × 120 band") as error:
        BigEarthNetV2Dataset(tmp_path, [V1_PATCH], np.zeros((1, 19), np.float32))[0]
    one_line(error, folder / f"{V1_PATCH}_VV.tif")


def test_benv1_zarr_truncated_chunk_and_bad_band_are_named(tmp_path):
    v1_patch(tmp_path / "patches", band(), band())
    store = tmp_path / "ben.zarr"
    convert_benv1_to_zarr(tmp_path / "patches", store)
    assert BigEarthNetV1ZarrDataset(store, [V1_PATCH])[0]["image_db"].shape == (2, 120, 120)
    with pytest.raises(DataError, match=r"band of shape \(120, 120\), expected one 64 × 64") as error:
        BigEarthNetV1ZarrDataset(store, [V1_PATCH], size=64)[0]
    one_line(error, f"{store}/sentinel1/{V1_PATCH}/VH")
    chunks = [path for path in (store / "sentinel1" / V1_PATCH / "VV").rglob("*") if path.is_file()
              and path.name != "zarr.json"]
    chunks[0].write_bytes(chunks[0].read_bytes()[:7])
    with pytest.raises(DataError, match="cannot read the patch") as error:
        BigEarthNetV1ZarrDataset(store, [V1_PATCH])[0]
    one_line(error, f"{store}/sentinel1/{V1_PATCH}")


# Multi-band TIFFs


@pytest.mark.parametrize("shape", [(64, 64, 13), (10, 10, 31), (16, 16, 2), (8, 8, 5)])
def test_read_image_takes_pixel_interleaved_tiffs_at_any_band_count(tmp_path, shape):
    bands_last = np.random.default_rng(0).random(shape, dtype=np.float32)
    image = read_image(gdal_like_tiff(tmp_path / "eurosat.tif", bands_last))
    assert image.shape == (shape[2], shape[0], shape[1])
    np.testing.assert_array_equal(image, np.moveaxis(bands_last, -1, 0))


def test_read_image_keeps_band_sequential_tiffs(tmp_path):
    bands_first = np.random.default_rng(1).random((13, 64, 64), dtype=np.float32)
    tifffile.imwrite(tmp_path / "planar.tif", bands_first, photometric="minisblack", planarconfig="separate",
                     metadata=None)
    tifffile.imwrite(tmp_path / "pages.tif", bands_first, photometric="minisblack", metadata=None)
    for name in ("planar.tif", "pages.tif"):
        np.testing.assert_array_equal(read_image(tmp_path / name), bands_first)


def test_read_geotiff_band_is_the_first_band_of_a_pixel_interleaved_file(tmp_path):
    bands_last = np.random.default_rng(2).random((20, 30, 3), dtype=np.float32)
    path = gdal_like_tiff(tmp_path / "three.tif", bands_last)
    np.testing.assert_array_equal(read_geotiff_band(path), bands_last[..., 0])
    assert read_tiff_bands(path).shape == (3, 20, 30)


# HDF5 labels


def so2sat_like(path: Path, labels: np.ndarray) -> Path:
    with h5py.File(path, "w") as handle:
        handle["sen1"] = np.random.default_rng(3).random((len(labels), 8, 8, 2), dtype=np.float32)
        handle["label"] = labels
    return path


def test_one_hot_hdf5_labels_are_class_indices(tmp_path):
    classes = np.array([4, 16, 0])
    path = so2sat_like(tmp_path / "so2sat.h5", np.eye(17)[classes])  # float64 one-hot (N, 17), as So2Sat
    dataset = HDF5ImageDataset(path, ["sen1"], ImageScaling("unit"), 8, label_key="label", channels_last=True,
                               class_names=[str(index) for index in range(17)])
    assert [int(dataset[index]["label"]) for index in range(3)] == classes.tolist()


def test_hdf5_labels_that_are_not_one_hot_are_one_line(tmp_path):
    rows = np.eye(17)[[1, 2]]
    rows[1, 5] = 1.0
    dataset = HDF5ImageDataset(so2sat_like(tmp_path / "two.h5", rows), ["sen1"], ImageScaling("unit"), 8,
                               label_key="label", channels_last=True)
    with pytest.raises(DataError, match="row 1 of label dataset 'label' is not one-hot") as error:
        dataset[1]
    one_line(error, tmp_path / "two.h5")
    with pytest.raises(DataError, match=r"label dataset 'label' has shape \(2, 17, 1\)") as error:
        HDF5ImageDataset(so2sat_like(tmp_path / "cube.h5", rows[..., None]), ["sen1"], ImageScaling("unit"), 8,
                         label_key="label")
    with pytest.raises(DataError, match="17 one-hot columns but there are 10 classes") as error:
        HDF5ImageDataset(tmp_path / "two.h5", ["sen1"], ImageScaling("unit"), 8, label_key="label",
                         class_names=[str(index) for index in range(10)])


# NaN / Inf named with the file or scene


def test_nan_in_a_float_tiff_is_named(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    image = np.zeros((8, 8), np.float32)
    image[3, 4] = np.nan
    tifffile.imwrite(folder / "scene_007.tif", image)
    dataset = ImageFolderDataset(folder, ImageScaling("range", (0.0, 1.0)), 8)
    with pytest.raises(DataError, match=r"contains NaN or infinite values \(1 of 64\)") as error:
        dataset[0]
    one_line(error, folder / "scene_007.tif")


def test_inf_in_hdf5_images_is_named_with_the_row(tmp_path):
    path = so2sat_like(tmp_path / "inf.h5", np.eye(17)[[0, 1]])
    with h5py.File(path, "r+") as handle:
        handle["sen1"][1, 0, 0, 0] = np.inf
    dataset = HDF5ImageDataset(path, ["sen1"], ImageScaling("range", (0.0, 1.0)), 8, channels_last=True)
    dataset[0]
    with pytest.raises(DataError, match="contains NaN or infinite values") as error:
        dataset[1]
    one_line(error, f"{path}[1]")


def test_nan_in_a_bigearthnet_band_is_named(tmp_path):
    vv = band()
    vv[0, 0] = np.nan
    folder = v1_patch(tmp_path, band(), vv)
    with pytest.raises(DataError, match="contains NaN or infinite values") as error:
        BigEarthNetV1Dataset(tmp_path, [V1_PATCH])[0]
    one_line(error, folder / f"{V1_PATCH}_VV.tif")


# Truncated or corrupt files of every format


def _truncate(path: Path, keep: float = 0.5) -> Path:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    return path


def test_truncated_png_and_jpeg_are_named(tmp_path):
    pixels = np.random.default_rng(4).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(pixels).save(tmp_path / name)
        with pytest.raises(DataError, match="cannot be read as an image") as error:
            read_image(_truncate(tmp_path / name))
        one_line(error, tmp_path / name)


def test_truncated_geotiff_is_named(tmp_path):
    path = tmp_path / "band.tif"
    write_geotiff(path, np.random.default_rng(5).random((64, 64), dtype=np.float32), crs=32633, transform=UTM)
    with pytest.raises(DataError, match="not a readable TIFF") as error:
        read_geotiff_band(_truncate(path, 0.3))
    one_line(error, path)


def test_truncated_hdf5_is_named(tmp_path):
    path = so2sat_like(tmp_path / "cut.h5", np.eye(17)[[0, 1, 2]])
    with pytest.raises(DataError, match="not a readable HDF5 file") as error:
        HDF5ImageDataset(_truncate(path), ["sen1"], ImageScaling("unit"), 8)
    one_line(error, path)


def test_truncated_npy_is_named(tmp_path):
    path = tmp_path / "pair__0__1__0.npy"
    np.save(path, np.ones((2, 2, 16, 16), np.float32))
    dataset = SEN12FloodDataset([_truncate(path)])
    with pytest.raises(DataError, match="not a readable .npy array") as error:
        dataset[0]
    one_line(error, path)


def test_truncated_parquet_is_named(tmp_path):
    path = tmp_path / "metadata.parquet"
    pd.DataFrame({"patch_id": ["a"] * 50, "labels": [["Pastures"]] * 50, "split": ["train"] * 50,
                  "s1_name": ["b"] * 50}).to_parquet(path)
    _truncate(path)
    (tmp_path / "BigEarthNet-S1").mkdir()
    module = BigEarthNetV2DataModule(str(tmp_path), synthetic=False)
    with pytest.raises(DataError, match="not a readable parquet file") as error:
        module.table()
    one_line(error, path)


def test_nan_in_a_sar_scene_window_is_named(tmp_path):
    import zarr

    from sarexp.data.sar_scenes import open_scene

    rc = np.ones((8, 8), np.complex64)
    rc[5, 2] = np.nan
    group = zarr.open_group(tmp_path / "scene.zarr", mode="w")
    group.create_array("rc", data=rc, chunks=(4, 4))
    scene = open_scene(tmp_path / "scene.zarr")
    scene.read("rc", slice(0, 4), slice(0, 8))
    with pytest.raises(DataError, match=r"\(array 'rc' lines 4:8, columns 0:8\): contains NaN or infinite values") as error:
        scene.read("rc", slice(4, 8), slice(0, 8))
    one_line(error, tmp_path / "scene.zarr")
