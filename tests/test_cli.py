"""The CLI end to end in subprocesses: train → resume → eval → predict, and one-line errors for bad input."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from cli_helpers import TINY, read_metrics, run_cli

pytestmark = pytest.mark.slow


def _global_step(checkpoint: Path) -> int:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, Path, int, str]:
    """Train 4 steps, then the same command with max_steps=8: (workdir, run dir, first step, 2nd output)."""
    workdir = tmp_path_factory.mktemp("cli")
    run_dir = workdir / "run"
    common = ["experiment=ssm4sar", f"hydra.run.dir={run_dir}", "trainer.limit_train_batches=4",
              "trainer.limit_val_batches=2", *TINY]
    first = run_cli([*common, "trainer.max_steps=4"], cwd=workdir)
    assert first.returncode == 0, first.stderr[-3000:]
    first_step = _global_step(run_dir / "checkpoints" / "last.ckpt")
    second = run_cli([*common, "trainer.max_steps=8"], cwd=workdir)
    assert second.returncode == 0, second.stderr[-3000:]
    return workdir, run_dir, first_step, second.stdout + second.stderr


def test_training_writes_checkpoints_metrics_and_run_info(trained_run):
    workdir, run_dir, first_step, _ = trained_run
    assert first_step == 4
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert list((run_dir / "checkpoints").glob("best-*.ckpt"))
    metrics = read_metrics(run_dir)
    for key in ("val/psnr", "val/input_psnr", "test/psnr", "test/input_psnr", "test/loss", "train/loss"):
        assert isinstance(metrics[key], float), key
    assert (run_dir / "csv" / "metrics.csv").is_file()
    assert list((run_dir / "samples").glob("epoch_*.png"))
    assert (workdir / "data" / "ssm4sar" / "training").is_dir()  # generated on first use


def test_same_command_resumes_from_the_saved_step(trained_run):
    _, run_dir, _, output = trained_run
    assert "starting from checkpoint" in output and "last.ckpt" in output
    assert _global_step(run_dir / "checkpoints" / "last.ckpt") == 8
    header, *rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    step_column = header.split(",").index("step")
    logged_steps = {int(float(row.split(",")[step_column])) for row in rows}
    assert min(logged_steps) < 4 and max(logged_steps) >= 7  # history of both attempts kept


def test_run_info_records_the_git_commit(trained_run):
    _, run_dir, _, _ = trained_run
    info = json.loads((run_dir / "run_info.json").read_text())
    assert set(info["git"]) == {"commit", "branch", "dirty"}
    assert info["seed"] == 0 and info["command"][0] == "python -m sarexp"


def test_eval_from_the_checkpoint_writes_test_metrics(trained_run):
    workdir, run_dir, _, _ = trained_run
    eval_dir = workdir / "eval"
    result = run_cli(
        ["experiment=ssm4sar", "task=eval", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
         f"hydra.run.dir={eval_dir}", *TINY],
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(eval_dir)
    assert metrics["test/psnr"] == pytest.approx(metrics["test/psnr"]) and "test/input_psnr" in metrics


def test_predict_focuses_whole_scenes_into_the_dataset_layout(trained_run):
    workdir, run_dir, _, _ = trained_run
    predict_dir = workdir / "predict"
    result = run_cli(
        ["experiment=ssm4sar", "task=predict", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
         f"hydra.run.dir={predict_dir}", "data.predict_overlap=16", *TINY],
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    source = zarr.open_group(workdir / "data" / "ssm4sar" / "validation" / "scene_000.zarr", mode="r")
    written = zarr.open_group(predict_dir / "predictions" / "scene_000.zarr", mode="r")
    focused = np.asarray(written["az"][...])
    assert focused.shape == source["rc"].shape and focused.dtype == np.complex64
    assert np.isfinite(focused).all() and np.abs(focused).max() > 0
    assert (predict_dir / "predictions" / "scene_000.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["experiment=nope"], ["experiment/nope", "ssm4sar"]),
        (["experiment=ssm4sar", "trainer.max_step=5"], ["trainer.max_step"]),
        (["experiment=ssm4sar", "+model.hiden_size=3"], ["model.hiden_size", "SSM4SARNet"]),
        (["experiment=ssm4sar", "model.num_layers=four"], ["model.num_layers", "four"]),
        (["experiment=ssm4sar", "seed=abc"], ["seed"]),
        (["experiment=ssm4sar", "monitor_mode=maximum"], ["monitor_mode", "min, max"]),
        (["experiment=ssm4sar", "task=eval"], ["ckpt_path"]),
        (["experiment=ssm4sar", "task=eval", "ckpt_path=/nonexistent/x.ckpt"], ["/nonexistent/x.ckpt"]),
    ],
    ids=["unknown-experiment", "misspelled-key", "unknown-yaml-key", "wrong-type", "wrong-root-type", "bad-mode",
         "eval-without-checkpoint", "missing-checkpoint"],
)
def test_bad_input_fails_with_a_short_error_naming_the_key(tmp_path, overrides, expected):
    result = run_cli([*overrides, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_root_without_synthetic_names_the_path(tmp_path):
    missing = tmp_path / "no-such-dataset"
    result = run_cli(
        ["experiment=ssm4sar", "data.synthetic=false", f"data.root={missing}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 1
    assert str(missing) in result.stderr and "data.synthetic=true" in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_zarr_store_is_named(tmp_path):
    root = tmp_path / "data"
    common = ["experiment=ssm4sar", f"data.root={root}", "debug=fast_dev_run", *TINY]
    assert run_cli([*common, f"hydra.run.dir={tmp_path / 'first'}"], cwd=tmp_path).returncode == 0
    broken = root / "training" / "scene_000.zarr"
    (broken / "zarr.json").write_text("{ not json")
    result = run_cli([*common, f"hydra.run.dir={tmp_path / 'second'}"], cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert str(broken) in result.stderr and "Traceback" not in result.stderr


def test_simultaneous_runs_get_their_own_run_dirs_and_wandb_works_offline(tmp_path):
    """Two jobs started together never share a run dir; W&B writes an offline run holding the config."""
    import subprocess
    import sys

    data = ["debug=fast_dev_run", f"data.root={tmp_path / 'data'}", *TINY]
    run_cli(["experiment=ssm4sar", *data, f"hydra.run.dir={tmp_path / 'warmup'}"], cwd=tmp_path)  # makes data
    commands = [
        [sys.executable, "-m", "sarexp", "experiment=ssm4sar", *data],
        [sys.executable, "-m", "sarexp", "experiment=ssm4sar", "logger=[csv,wandb]", *data],
    ]
    processes = [subprocess.Popen(c, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in commands]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
    run_dirs = sorted((tmp_path / "outputs" / "ssm4sar" / "runs").iterdir())
    assert len(run_dirs) == 2 and all((d / "metrics.json").is_file() for d in run_dirs)
    offline_runs = list(tmp_path.glob("outputs/ssm4sar/runs/*/wandb/offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1
    record = offline_runs[0].read_bytes()  # the offline run's records, config included, until `wandb sync`
    assert b"SSM4SARNet" in record and b"run_info" in record


def test_an_error_raised_while_building_an_object_is_one_line(tmp_path):
    result = run_cli(["experiment=ssm4sar", "data.num_workers=-1"], cwd=tmp_path)  # raised in __init__
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: data.num_workers must be >= 0, got -1"
    assert "Traceback" not in result.stderr
