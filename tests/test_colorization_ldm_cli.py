"""End to end through the CLI on tiny synthetic data: colorization_clip → colorization_vae →
colorization_season_classifier → colorization_ldm → task=colorize in single, batch and dataset modes, and
task=predict of a GeoTIFF scene."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from cli_helpers import logged_images, read_metrics, run_cli
from sarexp.loggers.images import to_rgb_array
from scene_helpers import write_scene

DATA = ["data.image_size=32", "data.simulator.scenes=24", "data.simulator.patches_per_scene=2", "data.batch_size=8",
        "data.val_batch_size=8", "callbacks.progress_bar=null", "callbacks.model_summary=null"]
UNET = ["model.cross_attention_dim=32", "model.block_out_channels=[16,32]", "model.norm_num_groups=8",
        "model.attention_head_dim=2"]


def _ok(result) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_colorization_pipeline_through_the_cli(tmp_path: Path):
    data = [f"data.root={tmp_path / 'data'}", *DATA]
    _ok(run_cli(["experiment=colorization_clip", *data, "trainer.max_steps=2", f"hydra.run.dir={tmp_path / 'clip'}",
                 "model.text.hidden_size=32", "model.text.num_hidden_layers=1"], tmp_path))
    _ok(run_cli(["experiment=colorization_vae", *data, "trainer.max_steps=2", f"hydra.run.dir={tmp_path / 'vae'}",
                 "model.block_out_channels=[8,8,8,8]", "model.norm_num_groups=4"], tmp_path))
    _ok(run_cli(["experiment=colorization_season_classifier", *data, "trainer.max_steps=2",
                 f"hydra.run.dir={tmp_path / 'cls'}", "model.widths=[8,16]", "model.feature_dim=16"], tmp_path))
    stages = [f"clip_checkpoint={tmp_path / 'clip/checkpoints/last.ckpt'}",
              f"vae_checkpoint={tmp_path / 'vae/checkpoints/last.ckpt'}", *UNET]
    _ok(run_cli(["experiment=colorization_ldm", *data, *stages, "trainer.max_steps=2",
                 f"hydra.run.dir={tmp_path / 'ldm'}"], tmp_path))
    assert 0.0 <= read_metrics(tmp_path / "ldm")["train/prompt_dropped"] <= 1.0

    infer = ["experiment=colorization_ldm", *data, *stages, f"ckpt_path={tmp_path / 'ldm/checkpoints/last.ckpt'}",
             "task=colorize", "task.num_inference_steps=4", "logger=[csv,tensorboard]"]
    sar = sorted((tmp_path / "data").glob("r_000/s1_000/*.png"))
    _ok(run_cli([*infer, f"hydra.run.dir={tmp_path / 'single'}", f"task.input_image={sar[0]}", "task.region=arctic",
                 "task.season=winter", f"task.output_path={tmp_path / 'one.png'}"], tmp_path))
    assert (tmp_path / "one.png").is_file()
    assert list(logged_images(tmp_path / "single")) == ["colorize/generated"]  # the picture in TensorBoard too
    # nothing repeated: the LDM run's config beside the checkpoint gives the rest, the same image comes out
    bare = [f"ckpt_path={tmp_path / 'ldm/checkpoints/last.ckpt'}", "task=colorize", "task.num_inference_steps=4"]
    _ok(run_cli([*bare, f"hydra.run.dir={tmp_path / 'bare'}", f"task.input_image={sar[0]}", "task.region=arctic",
                 "task.season=winter", f"task.output_path={tmp_path / 'bare.png'}"], tmp_path))
    assert (tmp_path / "bare.png").read_bytes() == (tmp_path / "one.png").read_bytes()

    (tmp_path / "inputs").mkdir()
    for file in sar[:2]:
        (tmp_path / "inputs" / file.name).write_bytes(file.read_bytes())
    _ok(run_cli([*bare, f"hydra.run.dir={tmp_path / 'batch'}", "task.mode=batch", f"task.input_dir={tmp_path / 'inputs'}",
                 "task.regions=[arctic,tropical]", "task.seasons=[winter,summer]", "+sampler=dpm_solver_latent",
                 "logger=[csv,tensorboard]"], tmp_path))
    written = sorted(p.name for p in (tmp_path / "batch/generated_images").glob("*.png"))
    assert len(written) == 2 * 4 + 2 and f"{sar[0].stem}_tropical_summer.png" in written
    grids = logged_images(tmp_path / "batch")
    assert sorted(grids) == [f"colorize/grid/{file.stem}" for file in sar[:2]]
    assert (grids[f"colorize/grid/{sar[0].stem}"] == to_rgb_array(
        tmp_path / "batch/generated_images" / f"{sar[0].stem}_grid.png")).all()

    classifier = tmp_path / "cls/checkpoints/last.ckpt"
    _ok(run_cli([*infer, f"hydra.run.dir={tmp_path / 'dataset'}", "task.mode=dataset", "task.num_samples=6",
                 f"task.extractor_checkpoint={classifier}", f"task.season_classifier_checkpoint={classifier}"], tmp_path))
    metrics = json.loads((tmp_path / "dataset/metrics.json").read_text())
    for key in ("psnr", "ssim", "sam", "fid", "season_recognition", "unguided/psnr", "baseline_mean/psnr",
                "vae_reconstruction/psnr", "other_season/season_recognition"):
        assert key in metrics, sorted(metrics)
    assert len(list((tmp_path / "dataset/dataset_results").glob("sample_*.png"))) == 6
    assert list(logged_images(tmp_path / "dataset")) == ["colorize/panels"]

    bad = run_cli([*infer, f"hydra.run.dir={tmp_path / 'bad'}", f"task.input_image={sar[0]}", "task.season=monsoon"],
                  tmp_path)
    assert bad.returncode == 1 and "task.season='monsoon'" in bad.stderr

    # a whole Sentinel-1 scene (GeoTIFF, σ⁰ in dB) → an RGB GeoTIFF on its grid, through task=predict
    scene = write_scene(tmp_path / "scene.tif", np.full((1, 80, 72), -12.0, np.float32), descriptions=["Sigma0_VV"])
    _ok(run_cli([*infer[:1], bare[0], "task=predict", f"data.predict_inputs=[{scene}]",
                 f"hydra.run.dir={tmp_path / 'scene'}", "scene.predictor.num_inference_steps=4", "scene.block_size=48",
                 "scene.block_overlap=16"], tmp_path))
    with rasterio.open(tmp_path / "scene/predictions/scene.tif") as colour, rasterio.open(scene) as source:
        assert colour.count == 3 and colour.transform == source.transform and colour.crs == source.crs
    assert (tmp_path / "scene/predictions/scene.png").is_file()
