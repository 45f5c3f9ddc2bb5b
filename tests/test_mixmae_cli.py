"""MixMAE through the CLI: pretrain a few steps on synthetic BENv1, fine-tune from that run's last.ckpt
(BigEarthNet and SEN12-FLOOD), and a one-line error for a bad `model.pretrained`."""

import math
from pathlib import Path

import pytest
import torch
from cli_helpers import read_metrics, run_cli

pytestmark = pytest.mark.slow

QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]
SMALL_BENV1 = ["data.simulator.patches={train:16,validation:8,test:8}", "data.batch_size=8", "data.val_batch_size=8",
               "trainer.max_steps=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", *QUIET]


@pytest.fixture(scope="module")
def pretraining_run(tmp_path_factory) -> tuple[Path, Path]:
    workdir = tmp_path_factory.mktemp("mixmae")
    run_dir = workdir / "pretrain"
    result = run_cli(["experiment=mixmae_benv1", f"hydra.run.dir={run_dir}", *SMALL_BENV1], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, run_dir


def test_pretraining_logs_losses_and_saves_a_weights_only_checkpoint(pretraining_run):
    _, run_dir = pretraining_run
    metrics = read_metrics(run_dir)
    keys = ("train/loss", "val/loss", "test/loss", "val/loss_zero_prediction", "test/loss_zero_prediction")
    assert all(math.isfinite(metrics[key]) for key in keys)
    assert (run_dir / "samples" / "epoch_0000.png").is_file()  # input | reconstruction figure
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2
    assert any(key.startswith("net.encoder.layers.") for key in checkpoint["state_dict"])


def test_fine_tuning_starts_from_the_pretraining_checkpoint(pretraining_run):
    workdir, run_dir = pretraining_run
    ft_dir = workdir / "finetune"
    result = run_cli(
        ["experiment=mixmae_benv1_ft", f"model.pretrained={run_dir / 'checkpoints' / 'last.ckpt'}",
         f"hydra.run.dir={ft_dir}", *SMALL_BENV1],
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = (ft_dir / "run.log").read_text()
    assert "81 encoder tensors loaded; missing (left at initialisation): none" in log
    assert "net.decoder_blocks" in log  # the decoder is reported as ignored
    metrics = read_metrics(ft_dir)
    for metric in ("ap_macro", "ap_macro_label_frequency", "f1_micro", "precision_macro", "selection"):
        assert math.isfinite(metrics[f"test/{metric}"]), metric


def test_flood_pairs_fine_tune_from_the_benv1_pretraining(pretraining_run):
    workdir, run_dir = pretraining_run
    result = run_cli(
        ["experiment=mixmae_sen12flood_ft", f"model.pretrained={run_dir / 'checkpoints' / 'last.ckpt'}",
         f"hydra.run.dir={workdir / 'flood'}", "data.simulator.folders={train:3,test:1}", "data.simulator.size=256",
         "data.image_size=256", "data.batch_size=2", "data.val_batch_size=2", "trainer.max_steps=1",
         "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", *QUIET],
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(workdir / "flood")
    assert {"test/accuracy", "test/f1", "test/loss"} <= set(metrics)


def test_a_missing_pretrained_checkpoint_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nope.ckpt"
    result = run_cli(["experiment=mixmae_benv1_ft", f"model.pretrained={missing}", f"hydra.run.dir={tmp_path / 'run'}"],
                     cwd=tmp_path)
    assert result.returncode != 0
    assert "model.pretrained" in result.stderr and str(missing) in result.stderr
    assert "Traceback" not in result.stderr
