"""The shared scene engine (issue 18, item 7) on the shipped hsi_mstpp experiment with a tiny MST++: scenes written
with rasterio as GIS software writes them (UTM and EPSG:4326; LZW, DEFLATE, tiled; a nodata border; smaller than
one tile) come back on their own grid, nodata stays nodata, a tile centre is the network's output on that tile,
and a killed prediction resumes to the identical file."""

import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from scene_helpers import compose_experiment, engine_factory, write_scene

from sarexp.errors import DataError
from sarexp.io.raster import north_up
from sarexp.scenes.dense import DenseTiles
from sarexp.tasks.builders import build_datamodule, build_system

TINY = ["experiment=hsi_mstpp", "model.stage=1", "scene.predictor.tile=32", "scene.predictor.overlap=8",
        "scene.predictor.batch_size=8"]


def rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    smooth = np.stack([np.sin(rows / 7.0 + k) + np.cos(cols / 5.0 - k) for k in range(3)])
    return np.clip(120 + 50 * smooth + rng.normal(0, 8, smooth.shape), 1, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def hsi(tmp_path_factory):
    """The hsi_mstpp system and data module (tiny MST++) and a factory of its configured engines."""
    root = tmp_path_factory.mktemp("hsi_scenes")
    cfg = compose_experiment(root, TINY)
    torch.manual_seed(0)
    return build_system(cfg).eval(), build_datamodule(cfg), engine_factory(cfg), root


def test_outputs_keep_the_grid_nodata_and_small_scenes(hsi, tmp_path, caplog):
    system, datamodule, engine, _ = hsi
    utm = rgb(70, 90)
    utm[:, :, :6] = 0  # a nodata border, as a GRD's
    write_scene(tmp_path / "utm.tif", utm, nodata=0, compress="lzw", tiled=True, blockxsize=16, blockysize=16)
    geographic = north_up(11.0, 46.0, 0.0001)
    write_scene(tmp_path / "small.tif", rgb(20, 24, 1), crs="EPSG:4326", transform=geographic, compress="deflate")
    write_scene(tmp_path / "nocrs.tif", rgb(20, 24, 2), crs=None, transform=north_up(0, 20, 1))
    with caplog.at_level(logging.WARNING):
        written = engine(tmp_path / "out", block_size=40, block_overlap=8).run(
            system, datamodule, [tmp_path], checkpoint=None)
    assert "nocrs.tif: no CRS; the outputs copy its pixel grid without georeferencing" in caplog.text
    with rasterio.open(tmp_path / "out" / "utm.tif") as out, rasterio.open(tmp_path / "utm.tif") as scene:
        assert out.crs == scene.crs and out.transform == scene.transform and out.shape == scene.shape
        assert out.count == 31 and out.descriptions[0] == "400 nm" and out.descriptions[-1] == "700 nm"
        assert out.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and out.profile["tiled"]
        cube = out.read()
        assert np.isnan(cube[:, :, :6]).all() and np.isfinite(cube[:, :, 6:]).all()
    with rasterio.open(tmp_path / "out" / "small.tif") as out:
        assert out.crs.to_epsg() == 4326 and out.transform == geographic and out.shape == (20, 24)
    assert (tmp_path / "out" / "utm.mat").is_file() and (tmp_path / "out" / "utm.png").is_file()
    assert sorted(written) == ["nocrs.tif", "small.tif", "utm.tif"]
    assert not list((tmp_path / "out").glob(".*.partial"))


def test_a_tile_centre_is_the_network_on_its_tile(hsi, tmp_path):
    system, datamodule, engine, _ = hsi
    scene = rgb(56, 80, 3)  # tiles at rows 0, 24 and columns 0, 24, 48: (40, 40) lies in one tile only
    write_scene(tmp_path / "scene.tif", scene)
    engine(tmp_path / "out", block_size=128).run(system, datamodule, [tmp_path / "scene.tif"], checkpoint=None)
    with rasterio.open(tmp_path / "out" / "scene.tif") as out:
        cube = out.read()
    low, high = float(scene.min()), float(scene.max())
    tile = torch.from_numpy((scene[:, 24:56, 24:56].astype(np.float32) - low) / (high - low))[None]
    with torch.no_grad():
        expected = system.net(tile)[0, :, 16, 16].numpy()  # its centre
    np.testing.assert_allclose(cube[:, 40, 40], expected, rtol=1e-4, atol=1e-5)


def test_a_killed_prediction_resumes_to_the_identical_file(hsi, tmp_path, monkeypatch):
    system, datamodule, engine, _ = hsi
    write_scene(tmp_path / "scene.tif", rgb(64, 80, 4), compress="deflate", tiled=True, blockxsize=16, blockysize=16)
    engine(tmp_path / "whole", block_size=24, block_overlap=4).run(system, datamodule, [tmp_path / "scene.tif"], None)

    predicted, original = [], DenseTiles.predict_block

    def dies_at_the_fourth_block(self, *args, **kwargs):
        predicted.append(1)
        if len(predicted) > 3:
            raise KeyboardInterrupt  # the process is stopped while predicting the fourth block
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DenseTiles, "predict_block", dies_at_the_fourth_block)
    resumed = engine(tmp_path / "resumed", block_size=24, block_overlap=4).run
    with pytest.raises(KeyboardInterrupt):
        resumed(system, datamodule, [tmp_path / "scene.tif"], None)
    partial = tmp_path / "resumed" / ".scene.partial"
    assert len(list(partial.glob("block_*.npy"))) == 3 and not (tmp_path / "resumed" / "scene.tif").exists()
    (partial / ".block_000003.npy.x.tmp").write_bytes(b"half a block")  # a write the kill cut short
    counted = []
    monkeypatch.setattr(DenseTiles, "predict_block", lambda self, *a, **k: counted.append(1) or original(self, *a, **k))
    resumed(system, datamodule, [tmp_path / "scene.tif"], None)
    assert len(counted) == 12 - 3  # 4 × 3 blocks, the 3 finished ones not predicted again
    assert (tmp_path / "resumed" / "scene.tif").read_bytes() == (tmp_path / "whole" / "scene.tif").read_bytes()
    resumed(system, datamodule, [tmp_path / "scene.tif"], None)
    assert len(counted) == 9  # a finished scene is skipped


def test_bad_scenes_are_one_line(hsi, tmp_path, caplog):
    system, datamodule, engine, _ = hsi
    write_scene(tmp_path / "grey.tif", rgb(20, 24)[:1])
    with pytest.raises(DataError, match="grey.tif: 1 band.*needs the red, green and blue bands") as error:
        engine(tmp_path / "out").run(system, datamodule, [tmp_path / "grey.tif"], None)
    assert "\n" not in str(error.value)
    named = write_scene(tmp_path / "named.tif", rgb(20, 24), descriptions=["B04", "B03", "B02"])
    with pytest.raises(DataError, match=r"no band described as 'red' among \['B04', 'B03', 'B02'\]"):
        engine(tmp_path / "out", predictor={"bands": ["red", "green", "blue"]}).run(system, datamodule, [named], None)
    floats = rgb(20, 24).astype(np.float32)
    floats[:, 3, 4] = np.nan
    write_scene(tmp_path / "nan.tif", floats)
    with caplog.at_level(logging.WARNING):
        engine(tmp_path / "out").run(system, datamodule, [tmp_path / "nan.tif"], None)
    assert "nan.tif: 1 pixel(s) hold NaN or infinite values; predicted as nodata" in caplog.text
    with rasterio.open(tmp_path / "out" / "nan.tif") as out:
        assert np.isnan(out.read(1)[3, 4]) and np.isfinite(out.read(1)[3, 5])
