"""MixMAE classifiers over whole Sentinel-1 scenes (issue 18, item 5), on the shipped fine-tuning experiments with
their tiny default models: class-probability GeoTIFFs on a grid `stride` times coarser than the scene, a label
map with a colour table, the flood-probability map of SEN12-FLOOD, and the input conventions."""

from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from rasterio.transform import Affine
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from scene_helpers import compose_experiment, engine_factory, write_scene

from sarexp.data.bigearthnet_labels import BEN19_CLASSES
from sarexp.errors import DataError
from sarexp.scenes.classifier import window_fractions
from sarexp.scenes.inputs import to_db
from sarexp.tasks.builders import build_datamodule, build_system


def backscatter(height: int, width: int, seed: int) -> np.ndarray:
    """VH, VV σ⁰ in linear power: smooth fields around −19 and −12.6 dB with speckle."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    db = np.stack([-19.0 + 3 * np.sin(rows / 13.0) * np.cos(cols / 9.0), -12.6 + 3 * np.cos(rows / 11.0)])
    return (10 ** (db / 10) * rng.gamma(4.4, 1 / 4.4, db.shape)).astype(np.float32)


def built(tmp_path, overrides):
    cfg = compose_experiment(tmp_path, overrides)
    torch.manual_seed(0)
    return build_system(cfg).eval(), build_datamodule(cfg), engine_factory(cfg)


def test_bigearthnet_probabilities_and_label_map_on_the_scene_grid(tmp_path):
    system, datamodule, engine = built(tmp_path, ["experiment=mixmae_benv1_ft", "scene.predictor.window=40",
                                                  "scene.predictor.stride=20", "scene.predictor.units=linear"])
    sigma0 = backscatter(100, 120, 0)
    sigma0[:, :, :30] = 0.0  # nodata border
    path = write_scene(tmp_path / "S1_GRD.tif", sigma0, descriptions=["Sigma0_VH", "Sigma0_VV"], nodata=0.0,
                       compress="deflate", tiled=True, blockxsize=32, blockysize=32)
    tensorboard = TensorBoardLogger(str(tmp_path / "tensorboard"), name="", version="")
    engine(tmp_path / "out", block_size=3).run(system, datamodule, [path], None,
                                               SimpleNamespace(loggers=[tensorboard], global_step=0))
    with rasterio.open(tmp_path / "out" / "S1_GRD.tif") as out, rasterio.open(path) as scene:
        assert out.crs == scene.crs and out.transform == scene.transform @ Affine.scale(20) and out.shape == (5, 6)
        assert out.descriptions == BEN19_CLASSES
        probabilities = out.read()
    with rasterio.open(tmp_path / "out" / "S1_GRD_labels.tif") as labels:
        assert labels.nodata == 255 and labels.colormap(1)[4][3] == 255
        label_map = labels.read(1)
    # output pixel (2, 3): the 40 × 40 window centred on input (50, 70), i.e. rows 30:70, columns 50:90
    window = torch.from_numpy(to_db(sigma0[:, 30:70, 50:90], "linear"))[None]
    image = datamodule.transform({"image_db": window}, training=False)["image"]
    with torch.no_grad():
        expected = system.probabilities(system(image))[0].numpy()
    np.testing.assert_allclose(probabilities[:, 2, 3], expected, rtol=1e-5, atol=1e-6)
    assert np.isnan(probabilities[:, :, 0]).all() and np.isfinite(probabilities[:, :, 2:]).all()
    assert (label_map[:, 0] == 255).all() and label_map[2, 3] == np.argmax(expected)
    assert (tmp_path / "out" / "S1_GRD.png").is_file()
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["predictions/quicklook/S1_GRD"]  # the quicklook reached the logger


def test_sen12flood_pairs_give_a_flood_probability_map(tmp_path):
    system, datamodule, engine = built(tmp_path, ["experiment=mixmae_sen12flood_ft", "data.image_size=128",
                                                  "scene.predictor.window=64", "scene.predictor.stride=32"])
    pair = np.concatenate([backscatter(96, 96, 1), backscatter(96, 96, 2)])
    path = write_scene(tmp_path / "pair.tif", pair, compress="lzw")
    engine(tmp_path / "out").run(system, datamodule, [path], None)
    with rasterio.open(tmp_path / "out" / "pair.tif") as out:
        assert out.count == 1 and out.descriptions == ("flood probability",) and out.shape == (3, 3)
        flood = out.read(1)
    window = torch.from_numpy(to_db(pair[:, 16:80, 16:80], "linear").reshape(1, 2, 2, 64, 64))
    image = datamodule.transform({"image_db": window}, training=False)["image"]
    with torch.no_grad():
        expected = float(system.probabilities(system(image))[0])
    assert flood[1, 1] == pytest.approx(expected, rel=1e-5)
    assert not (tmp_path / "out" / "pair_labels.tif").exists()


def test_a_scene_without_the_bands_the_model_needs_is_one_line(tmp_path):
    system, datamodule, engine = built(tmp_path, ["experiment=mixmae_benv1_ft"])
    path = write_scene(tmp_path / "vv_only.tif", backscatter(40, 40, 3)[1:], descriptions=["Sigma0_VV"])
    with pytest.raises(DataError, match=r"vv_only.tif: no band described as 'VH' among \['Sigma0_VV'\]; the model "
                                        r"needs \['VH', 'VV'\]: set scene.predictor.bands") as error:
        engine(tmp_path / "out").run(system, datamodule, [path], None)
    assert "\n" not in str(error.value)


def test_units_and_window_fractions_follow_their_formulas():
    amplitude = np.array([[0.0, 10.0, 100.0]], np.float32)
    np.testing.assert_allclose(to_db(amplitude, "amplitude", calibration=10.0), [[-60.0, 0.0, 20.0]], atol=1e-5)
    np.testing.assert_allclose(to_db(np.array([0.1, -1.0], np.float32), "linear"), [-10.0, -60.0], atol=1e-5)
    valid = np.random.default_rng(0).random((9, 11)) > 0.3
    naive = [[valid[r:r + 4, c:c + 4].mean() for c in range(0, 8, 2)] for r in range(0, 6, 2)]
    np.testing.assert_allclose(window_fractions(valid, 4, 2), naive)
