"""Colorization over whole scenes (issue 18, item 4) on the shipped colorization_ldm experiment with tiny networks:
MultiDiffusion against its definition, joint canvases and diffusers' VAE tiling, nodata, the same seed giving the
same file, and the prompt from the scene's own metadata."""

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from ldm_helpers import tiny_encoders
from scene_helpers import compose_experiment, engine_factory, write_scene

from sarexp.data.tiling import grid_windows, window_weights
from sarexp.diffusion.multidiffusion import multidiffusion_model_fn
from sarexp.io.raster import RasterInfo, north_up
from sarexp.scenes.colorization import position_noise
from sarexp.scenes.geography import acquisition_date, region_of, scene_region_season, season_of
from sarexp.systems.latent_encoders import FrozenEncoders
from sarexp.tasks.builders import build_datamodule, build_system

TINY = ["experiment=colorization_ldm", "clip_checkpoint=tiny", "vae_checkpoint=tiny", "data.image_size=32",
        "model.block_out_channels=[16,32]", "model.cross_attention_dim=16", "model.attention_head_dim=2",
        "model.norm_num_groups=8", "scene.predictor.num_inference_steps=4", "scene.predictor.strength=0.5",
        "scene.predictor.batch_size=16", "scene.predictor.vae_tile=32"]


@pytest.fixture(scope="module")
def ldm(tmp_path_factory):
    root = tmp_path_factory.mktemp("colorization_scenes")
    cfg = compose_experiment(root, TINY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FrozenEncoders, "from_checkpoints", classmethod(lambda cls, clip, vae: tiny_encoders()))
        torch.manual_seed(0)
        system = build_system(cfg).eval()
    return system, build_datamodule(cfg), engine_factory(cfg)


def sar_db(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    return (-14 + 5 * np.sin(rows / 9.0) * np.cos(cols / 7.0) + rng.normal(0, 1, (height, width)))[None].astype(
        np.float32)


@pytest.mark.parametrize("weights", ["uniform", "linear"])
def test_multidiffusion_averages_the_windows_predictions(weights):
    def window_fn(x, t, windows):  # depends on the window: no canvas-wide function gives this
        return torch.stack([x[i] * (1 + top) + left + t[i] for i, (top, left, _, _) in enumerate(windows)])

    x, t = torch.randn(1, 2, 9, 11), torch.tensor([3])
    total, norm = torch.zeros_like(x), torch.zeros(1, 1, 9, 11)
    for window in grid_windows((9, 11), 4, 2):
        top, left, h, w = window
        weight = torch.from_numpy(window_weights(window, (9, 11), 2, 1e-3, "linear")) if weights == "linear" else 1.0
        total[..., top:top + h, left:left + w] += weight * (x[..., top:top + h, left:left + w] * (1 + top) + left + 3)
        norm[..., top:top + h, left:left + w] += weight
    calls = []
    model_fn = multidiffusion_model_fn(window_fn, (9, 11), 4, 2, 3, calls.append, weights)
    torch.testing.assert_close(model_fn(x, t), total / norm)
    assert sum(calls) == len(grid_windows((9, 11), 4, 2)) and max(calls) == 3


def test_position_noise_depends_on_the_position_only():
    whole = position_noise(7, 4, (0, 0, 150, 140))
    torch.testing.assert_close(position_noise(7, 4, (60, 70, 80, 50)), whole[..., 60:140, 70:120])
    assert not torch.equal(position_noise(8, 4, (0, 0, 10, 10)), whole[..., :10, :10])


def test_scenes_are_colorized_jointly_on_their_grid_and_reproducibly(ldm, tmp_path, monkeypatch):
    system, datamodule, engine = ldm
    scene = sar_db(72, 80)
    scene[:, :, :10] = -9999.0
    path = write_scene(tmp_path / "S1A_IW_GRDH_1SDV_20180115T054512_VV.tif", scene, nodata=-9999.0,
                       descriptions=["Sigma0_VV_db"], compress="lzw", tiled=True, blockxsize=16, blockysize=16)
    tiled = []
    vae = system.encoders.vae
    monkeypatch.setattr(vae, "_tiled_encode", lambda x, f=vae._tiled_encode: tiled.append("encode") or f(x))
    decode = vae.tiled_decode
    monkeypatch.setattr(vae, "tiled_decode", lambda z, **k: tiled.append("decode") or decode(z, **k))
    engine(tmp_path / "a", block_size=64, block_overlap=16).run(system, datamodule, [path], None)
    assert {"encode", "decode"} <= set(tiled)  # canvases above the VAE's 32 px went through diffusers' tiling
    engine(tmp_path / "b", block_size=64, block_overlap=16).run(system, datamodule, [path], None)
    out = tmp_path / "a" / path.name
    assert out.read_bytes() == (tmp_path / "b" / path.name).read_bytes()  # same seed, same scene
    with rasterio.open(out) as colour, rasterio.open(path) as sar:
        assert colour.crs == sar.crs and colour.transform == sar.transform and colour.count == 3
        assert colour.dtypes[0] == "uint8" and colour.tags()["PROMPT"].endswith("Region: tropical, Season: summer")
        mask = colour.dataset_mask()
    assert not mask[:, :10].any() and mask[:, 10:].all()
    assert (tmp_path / "a" / f"{path.stem}.png").is_file()
    engine(tmp_path / "c", predictor={"seed": 1}).run(system, datamodule, [path], None)
    assert (tmp_path / "c" / path.name).read_bytes() != out.read_bytes()


def test_one_window_joint_is_one_window_alone(ldm, tmp_path):
    system, datamodule, engine = ldm
    path = write_scene(tmp_path / "one.tif", sar_db(32, 32, 1))
    for mode, joint in (("joint", True), ("naive", False)):
        engine(tmp_path / mode, predictor={"joint": joint}).run(system, datamodule, [path], None)
    with rasterio.open(tmp_path / "joint" / "one.tif") as joint, rasterio.open(tmp_path / "naive" / "one.tif") as naive:
        np.testing.assert_array_equal(joint.read(), naive.read())


def test_region_and_season_from_the_scene(tmp_path):
    def info(name: str, transform, crs: str, tags: dict) -> RasterInfo:
        return RasterInfo(Path(name), 100, 100, 1, "float32", rasterio.crs.CRS.from_string(crs), transform, None,
                          (None,), tags)

    oslo = info("S1B_IW_GRDH_1SDV_20190712T170000_x.tif", north_up(590000, 6645000, 10), "EPSG:32632", {})
    assert acquisition_date(oslo) == datetime(2019, 7, 12) and scene_region_season(oslo) == ("temperate", "summer")
    santiago = info("s.tif", north_up(-70.7, -33.4, 0.001), "EPSG:4326", {"TIFFTAG_DATETIME": "2020:07:01 10:00:00"})
    assert scene_region_season(santiago) == ("temperate", "winter")  # July in the southern hemisphere
    assert region_of(5.0) == "tropical" and region_of(-70.0) == "arctic" and region_of(66.0) == "temperate"
    assert season_of(datetime(2021, 12, 5), 10.0) == "winter" and season_of(datetime(2021, 12, 5), -10.0) == "summer"
