"""PDM through the CLI: train a tiny low-resolution model and a super-resolution model on the synthetic SAR
wave-mode data, sample from both (the super-resolution model conditioned on the low-resolution samples) and
compute the likelihood bound; one-line errors for bad sampling input."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from cli_helpers import logged_images, run_cli
from sarexp.loggers.images import to_rgb_array
from test_unet_pretrained import SEED_METADATA, write_seed_folder

pytestmark = pytest.mark.slow

TINY_PDM = [
    "data.image_size=16",
    "data.generator.counts={train:4,val:2,test:2}",
    "data.batch_size=8",
    "data.val_batch_size=12",
    "model.model_channels=8",
    "diffusion.steps=50",
    "trainer.max_steps=3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "callbacks.diffusion_samples.sampler.steps=3",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]
LOWRES = ["experiment=pdm_sar_lowres", *TINY_PDM]
SUPERRES = ["experiment=pdm_sar_superres", *TINY_PDM, "data.image_size=16", "data.low_res_size=8"]


@pytest.fixture(scope="module")
def lowres_run(tmp_path_factory) -> tuple[Path, Path]:
    workdir = tmp_path_factory.mktemp("pdm")
    run_dir = workdir / "train"
    result = run_cli([*LOWRES, f"hydra.run.dir={run_dir}", "trainer.val_check_interval=3"], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, run_dir


def test_training_keeps_raw_and_ema_weights_and_draws_epoch_samples(lowres_run):
    _, run_dir = lowres_run
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert any(key.startswith("ema_net.") for key in state) and any(key.startswith("net.") for key in state)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/loss", "test/loss", "train/mse", "train/vb"} <= set(metrics)
    assert list((run_dir / "samples").glob("epoch_*.png"))


@pytest.fixture(scope="module")
def lowres_samples(lowres_run) -> Path:
    workdir, run_dir = lowres_run
    sample_dir = workdir / "sample"
    result = run_cli(
        [*LOWRES, "task=sample", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={sample_dir}",
         "sampler=dpm_solver", "sampler.steps=4", "task.num_samples=5", "task.batch_size=3", "task.class_label=2"],
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return sample_dir


def test_sample_writes_npz_hdf5_and_a_grid(lowres_samples):
    with np.load(lowres_samples / "samples.npz") as data:
        images, labels = data["images"], data["labels"]
    assert images.shape == (5, 1, 16, 16) and images.dtype == np.float32
    assert np.abs(images).max() <= 1.0 and labels.dtype == np.int64 and (labels == 2).all()
    with h5py.File(lowres_samples / "samples.h5") as file:
        np.testing.assert_array_equal(file["images"][...], images)
    assert (lowres_samples / "samples.png").stat().st_size > 100
    metrics = json.loads((lowres_samples / "metrics.json").read_text())
    assert metrics["sample/nfe_per_batch"] == 4 and metrics["sample/samples_per_second"] > 0


def test_likelihood_writes_the_bound_in_bits_per_dim(lowres_run):
    workdir, run_dir = lowres_run
    out = workdir / "likelihood"
    result = run_cli([*LOWRES, "task=likelihood", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                      f"hydra.run.dir={out}", "task.max_batches=1", "task.progress=false"], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["likelihood/bpd"] > metrics["likelihood/decoder_bpd"] > 0
    assert metrics["likelihood/steps"] == 50 and metrics["likelihood/num_images"] == 12
    assert len((out / "likelihood_terms.csv").read_text().splitlines()) == 51


def test_super_resolution_is_conditioned_on_low_resolution_samples(lowres_run, lowres_samples, tmp_path):
    workdir, _ = lowres_run
    train_dir = tmp_path / "sr_train"
    result = run_cli([*SUPERRES, f"hydra.run.dir={train_dir}"], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(lowres_samples / "samples.npz") as data:  # 16 px low-res samples → 8 px inputs of the SR model
        small = data["images"].reshape(5, 1, 8, 2, 8, 2).mean(axis=(3, 5))
        np.savez(tmp_path / "low.npz", images=small, labels=data["labels"])
    sample_dir = tmp_path / "sr_sample"
    result = run_cli([*SUPERRES, "task=sample", f"ckpt_path={train_dir / 'checkpoints' / 'last.ckpt'}",
                      f"hydra.run.dir={sample_dir}", "sampler=ddim", "sampler.steps=3",
                      f"task.low_res_path={tmp_path / 'low.npz'}"], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(sample_dir / "samples.npz") as data:
        assert data["images"].shape == (5, 1, 16, 16) and (data["labels"] == 2).all()


def test_bad_sampling_input_fails_with_one_line(lowres_run, tmp_path):
    workdir, run_dir = lowres_run
    checkpoint = f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"
    for overrides, expected in (
        ([], "ckpt_path"),
        ([checkpoint, "task.class_label=9"], "task.class_label=9"),
        ([checkpoint, "model.model_channels=16"],
         "model.model_channels=16 on the command line, but the model was trained with model.model_channels=8"),
    ):
        result = run_cli([*LOWRES, "task=sample", *overrides, f"hydra.run.dir={tmp_path / 'run'}"],
                         cwd=workdir, timeout=120)
        assert result.returncode != 0 and expected in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr


def test_sample_and_likelihood_take_the_training_run_settings(lowres_run, tmp_path):
    """No model/diffusion/data overrides: they come from the run's .hydra/config.yaml beside checkpoints/."""
    workdir, run_dir = lowres_run
    checkpoint = f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"
    result = run_cli(["experiment=pdm_sar_lowres", "task=sample", checkpoint, f"hydra.run.dir={tmp_path / 's'}",
                      "sampler=ddim", "sampler.steps=2", "task.num_samples=2", "callbacks.progress_bar=null"],
                     cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "s" / "samples.npz") as data:
        assert data["images"].shape == (2, 1, 16, 16)  # the run's data.image_size=16, not the experiment's 32
    result = run_cli(["experiment=pdm_sar_lowres", "task=likelihood", checkpoint, f"hydra.run.dir={tmp_path / 'l'}",
                      "task.max_batches=1", "task.steps=5", "task.progress=false"], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "l" / "metrics.json").read_text())["likelihood/num_images"] == 12  # run's val size


def test_sample_from_a_seed_model_folder(tmp_path):
    """model.pretrained=<unzipped seed folder>: weights mapped, model/diffusion/data from its metadata.json."""
    write_seed_folder(tmp_path / "seed_model", SEED_METADATA)
    result = run_cli(["experiment=pdm_sar_lowres", "task=sample", f"model.pretrained={tmp_path / 'seed_model'}",
                      f"hydra.run.dir={tmp_path / 's'}", "sampler=ddim", "sampler.steps=3", "task.num_samples=3",
                      "task.hdf5=false", "task.progress=false", "logger=[csv,tensorboard,wandb]"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(tmp_path / "s" / "samples.npz") as data:
        images, labels = data["images"], data["labels"]
    assert images.shape == (3, 1, 32, 32) and np.isfinite(images).all() and labels.max() < 3  # 3 seed classes
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["sample/nfe_per_batch"] == 3
    images = logged_images(tmp_path / "s")  # the grid in TensorBoard and W&B too, the same pixels
    assert list(images) == ["sample/grid"]
    assert (images["sample/grid"] == to_rgb_array(tmp_path / "s" / "samples.png")).all()
    assert list((tmp_path / "s" / "wandb").glob("offline-run-*/files/media/images/sample/grid_*.png"))
