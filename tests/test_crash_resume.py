"""Crash safety end to end on the shipped experiments with their own trainer settings (`trainer.max_epochs`
included): a run SIGKILLed at random moments and started again each time ends bit-identical (weights, EMA,
optimizer, schedulers, timestep sampler, RNG states, loader position) to an uninterrupted run.

Every experiment family is checked at a tiny size (tests/tiny_experiments.py), with `last.ckpt` every 7
steps. SSM4SAR runs through the CLI (killed twice, then also Ctrl-C'd: exit 1 with one line saying how to
resume); the other families run `task=train` in child processes forked from a server that imported sarexp
once (a fresh process each, SIGKILLed like any other, without paying the imports each time).

Exact resumption with `trainer.max_epochs` set failed before: Lightning created the train loader before it
restored the checkpoint (see `sarexp.data.resumable.restore_positions`) and the loader began a new epoch
order. SAREXP_KILL_SEED=<seed> replays the kill moments of a failed run.
"""

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tiny_experiments import QUIET, TINY, compose_in, tiny_overrides, train_in

pytestmark = pytest.mark.slow

EXACT = ["deterministic=true", "callbacks.last_checkpoint.every_n_train_steps=7"]
# Run length: trainer.max_steps only (each experiment keeps its max_epochs), several epochs of the tiny data.
FAMILIES = {
    "pdm_sar_lowres": 30,          # PDM: EMA, loss-aware timestep sampler
    "mixmae_benv1": 30,            # MixMAE pretraining
    "mixmae_benv1_ft": 30,         # MixMAE fine-tuning
    "hsi_mstpp": 30,               # HSI MST++ (max_epochs -1, validation every 100 batches)
    "hsi_cswin_gan": 60,           # HSI GAN: two optimizers, both count as steps
    "colorization_vae": 30,        # colorization VAE
    "colorization_ldm": 30,        # colorization LDM (frozen CLIP text tower and VAE from earlier stages)
}
KILL_DELAY_S = 0.2  # the kill comes up to this long after a checkpoint at or past a random step


def _kill_seed() -> str:
    return os.environ.get("SAREXP_KILL_SEED", str(time.time_ns()))


def _saved_step(last: Path, seen: list[int]) -> int | None:
    """The step of last.ckpt when it changed since the previous call (mtime in `seen`), else None."""
    if not last.exists() or last.stat().st_mtime_ns == seen[0]:
        return None
    seen[0] = last.stat().st_mtime_ns
    return int(torch.load(last, map_location="cpu", weights_only=True)["global_step"])


def _kill_after_a_random_checkpoint(alive: Callable[[], bool], kill: Callable[[], None], last: Path,
                                    rng: random.Random, max_steps: int, seed: str) -> int:
    """Wait for a checkpoint at or past a random step of the first third of the run, kill a random moment
    later (the run has many steps left); the step last.ckpt holds then."""
    target, seen, deadline = rng.randint(1, max_steps // 3), [last.stat().st_mtime_ns if last.exists() else 0], \
        time.monotonic() + 300
    while (step := _saved_step(last, seen)) is None or step < target:
        assert alive(), f"the run ended before it could be interrupted (SAREXP_KILL_SEED={seed})"
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, KILL_DELAY_S))
    assert alive(), f"the run ended before it could be interrupted (SAREXP_KILL_SEED={seed})"
    kill()
    return int(torch.load(last, map_location="cpu", weights_only=True)["global_step"])


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


def _assert_same_final_state(resumed: Path, reference: Path, seed: str) -> None:
    """Weights and EMA weights and sampler buffers (state_dict), optimizer and scheduler states, the RNG
    states and the loader's position at the final step."""
    expected = torch.load(reference, map_location="cpu", weights_only=True)
    actual = torch.load(resumed, map_location="cpu", weights_only=True)
    where = f"(SAREXP_KILL_SEED={seed})"
    assert actual["global_step"] == expected["global_step"] and actual["epoch"] == expected["epoch"], where
    for key in ("state_dict", "optimizer_states", "lr_schedulers"):
        _assert_identical(actual[key], expected[key], f"{key} {where}")
    rng = [[state["rng"] for key, state in checkpoint["callbacks"].items() if key.startswith("LastCheckpoint")]
           for checkpoint in (actual, expected)]
    _assert_identical(rng[0], rng[1], f"rng {where}")
    loader = [checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"] for checkpoint in (actual, expected)]
    _assert_identical(loader[0], loader[1], f"loader position {where}")


@pytest.fixture(scope="module")
def forkserver() -> multiprocessing.context.BaseContext:
    """Children forked from a server that imported sarexp's training once (forking this process instead
    could hang in OpenMP, which the tests before used)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tiny_experiments"])
    return context


@pytest.mark.parametrize("experiment", list(FAMILIES))
def test_killed_runs_of_every_family_resume_bit_identical(tmp_path, experiment, forkserver):
    """The uninterrupted reference and the first attempt start together on an empty data root (one
    generates the synthetic data, the other waits for it)."""
    max_steps = FAMILIES[experiment]
    overrides = [*tiny_overrides(experiment, lambda extra: compose_in(tmp_path, extra), tmp_path), *EXACT,
                 f"trainer.max_steps={max_steps}", f"data.root={tmp_path / 'data'}"]
    assert compose_in(tmp_path, overrides).trainer.max_epochs != -1 or experiment.startswith("hsi_")

    def start(run_dir: Path) -> multiprocessing.Process:
        process = forkserver.Process(target=train_in, args=(str(tmp_path), [*overrides, f"paths.run_dir={run_dir}"]))
        process.start()
        return process

    reference = start(tmp_path / "reference")
    interrupted = tmp_path / "interrupted"
    last = interrupted / "checkpoints" / "last.ckpt"
    seed = _kill_seed()
    rng = random.Random(f"{seed}{experiment}")
    attempt = start(interrupted)
    step = _kill_after_a_random_checkpoint(attempt.is_alive, attempt.kill, last, rng, max_steps, seed)
    attempt.join()
    assert attempt.exitcode == -signal.SIGKILL
    resumed = start(interrupted)
    resumed.join(timeout=300)
    reference.join(timeout=300)
    assert resumed.exitcode == 0 and reference.exitcode == 0
    assert 0 < step < max_steps, f"SAREXP_KILL_SEED={seed}"
    _assert_same_final_state(last, tmp_path / "reference" / "checkpoints" / "last.ckpt", seed)


SSM4SAR = ["experiment=ssm4sar", *TINY["ssm4sar"], *QUIET, "trainer.limit_test_batches=1", *EXACT]


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_ssm4sar_killed_twice_then_ctrl_c_through_the_cli_resumes_bit_identical(tmp_path):
    """The issue's case: experiment=ssm4sar with its own max_epochs (10 epochs of 8 batches here)."""
    data_root = tmp_path / "data"

    def command(run_dir: Path) -> list[str]:
        return [sys.executable, "-m", "sarexp", *SSM4SAR, f"hydra.run.dir={run_dir}", f"data.root={data_root}"]

    def popen(run_dir: Path) -> subprocess.Popen:
        return subprocess.Popen(command(run_dir), cwd=tmp_path, env=_environment(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    reference = popen(tmp_path / "reference")
    interrupted = tmp_path / "interrupted"
    last = interrupted / "checkpoints" / "last.ckpt"
    seed = _kill_seed()
    rng = random.Random(seed)
    steps = []
    for signum in (signal.SIGKILL, signal.SIGKILL, signal.SIGINT):
        process = popen(interrupted)
        steps.append(_kill_after_a_random_checkpoint(lambda: process.poll() is None,
                                                     lambda: process.send_signal(signum), last, rng, 80, seed))
        _, errors = process.communicate(timeout=120)
        if signum == signal.SIGINT:
            step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
            lines = [line for line in errors.splitlines() if line.startswith("error:")]
            assert process.returncode == 1 and len(lines) == 1 and "Traceback" not in errors, errors[-3000:]
            assert f"stopped by SIGINT at step {step}" in lines[0] and "run the same command again to resume" in lines[0]
            steps[-1] = step
    resumed = subprocess.run(command(interrupted), cwd=tmp_path, env=_environment(), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "starting from checkpoint" in resumed.stdout + resumed.stderr
    _, errors = reference.communicate(timeout=300)
    assert reference.returncode == 0, errors[-3000:]
    assert steps == sorted(steps) and 0 < steps[-1] < 80, f"SAREXP_KILL_SEED={seed}"
    _assert_same_final_state(last, tmp_path / "reference" / "checkpoints" / "last.ckpt", seed)
