"""Crash safety end to end: a run SIGKILLed (twice for SSM4SAR, then also Ctrl-C'd) at random moments and
started again with the same command each time ends bit-identical (weights, EMA, optimizer, schedulers, RNG
states) to an uninterrupted run; Ctrl-C exits 1 with one line saying how to resume."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from cli_helpers import TINY

pytestmark = pytest.mark.slow

QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]
EXACT = ["deterministic=true", "trainer.max_epochs=-1", "callbacks.last_checkpoint.every_n_train_steps=1"]

SSM4SAR = ["experiment=ssm4sar", *TINY, "data.simulator.n_azimuth=128", "trainer.max_steps=30",
           "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]
DIFFUSION = ["experiment=pdm_sar_lowres", "data.image_size=8", "data.generator.counts={train:12,val:2,test:2}",
             "data.batch_size=4", "data.val_batch_size=2", "model.model_channels=8", "diffusion.steps=20",
             "system.schedule_sampler=loss-second-moment", "system.ema_decay=0.9", "trainer.max_steps=14",
             "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "callbacks.diffusion_samples=null", *QUIET]
CLASSIFICATION = ["experiment=mixmae_benv1_ft", "data.simulator.patches={train:12,validation:4,test:4}",
                  "data.image_size=32", "data.batch_size=4", "data.val_batch_size=4", "trainer.max_steps=10",
                  "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", *QUIET]


def _command(args: list[str], run_dir: Path, data_root: Path) -> list[str]:
    return [sys.executable, "-m", "sarexp", *args, *EXACT, f"hydra.run.dir={run_dir}", f"data.root={data_root}"]


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _interrupt_at_random(command: list[str], cwd: Path, last: Path, rng: random.Random, signum: int) -> int:
    """Start the command, send it `signum` a random moment after it wrote a new last.ckpt; its step then.

    SIGINT must end the run with exit code 1 and one line saying how to resume, naming the saved step.
    """
    before = last.stat().st_mtime_ns if last.exists() else 0
    process = subprocess.Popen(command, cwd=cwd, env=_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (last.exists() and last.stat().st_mtime_ns != before):
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.4))
    process.send_signal(signum)
    _, errors = process.communicate(timeout=120)
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    if signum == signal.SIGINT:
        lines = [line for line in errors.splitlines() if line.startswith("error:")]
        assert process.returncode == 1 and len(lines) == 1 and "Traceback" not in errors, errors[-3000:]
        assert f"stopped by SIGINT at step {step}" in lines[0] and "run the same command again to resume" in lines[0]
    return step


def _assert_identical(actual: Any, expected: Any, where: str) -> None:
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor) and actual.dtype == expected.dtype, where
        assert torch.equal(actual, expected), f"{where} differs"
    elif isinstance(expected, dict):
        assert set(actual) == set(expected), f"{where}: keys {set(actual) ^ set(expected)}"
        for key in expected:
            _assert_identical(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for index, (a, e) in enumerate(zip(actual, expected)):
            _assert_identical(a, e, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def _rng_states(checkpoint: dict[str, Any]) -> Any:
    return [state["rng"] for key, state in checkpoint["callbacks"].items() if key.startswith("LastCheckpoint")]


@pytest.mark.parametrize(
    ("args", "signals"),
    [(SSM4SAR, [signal.SIGKILL, signal.SIGKILL, signal.SIGINT]), (DIFFUSION, [signal.SIGKILL]),
     (CLASSIFICATION, [signal.SIGKILL])],
    ids=["ssm4sar", "diffusion", "classification"],
)
def test_interrupted_runs_resumed_with_the_same_command_end_bit_identical(tmp_path, args, signals):
    """The uninterrupted reference and the first attempt start together on an empty data root (one
    generates the synthetic data, the other waits for it)."""
    data_root = tmp_path / "data"
    reference = tmp_path / "reference"
    uninterrupted = subprocess.Popen(_command(args, reference, data_root), cwd=tmp_path, env=_environment(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    interrupted = tmp_path / "interrupted"
    command = _command(args, interrupted, data_root)
    last = interrupted / "checkpoints" / "last.ckpt"
    seed = os.environ.get("SAREXP_KILL_SEED", str(time.time_ns()))
    rng = random.Random(seed)
    steps = [_interrupt_at_random(command, tmp_path, last, rng, signum) for signum in signals]
    resumed = subprocess.run(command, cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "starting from checkpoint" in resumed.stdout + resumed.stderr
    _, errors = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, errors[-3000:]

    expected = torch.load(reference / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    actual = torch.load(last, map_location="cpu", weights_only=True)
    assert steps == sorted(steps) and steps[-1] < expected["global_step"], f"SAREXP_KILL_SEED={seed}"
    assert actual["global_step"] == expected["global_step"]
    for key in ("state_dict", "optimizer_states", "lr_schedulers"):
        _assert_identical(actual[key], expected[key], f"{key} (SAREXP_KILL_SEED={seed})")
    _assert_identical(_rng_states(actual), _rng_states(expected), "rng")
