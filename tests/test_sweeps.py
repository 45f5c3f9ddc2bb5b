"""Optuna sweeps through the CLI: persistent studies that continue, summaries, failed trials."""

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from cli_helpers import TINY, read_metrics, run_cli

pytestmark = pytest.mark.slow

QUICK = ["experiment=ssm4sar", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
         "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", *TINY]
SEARCH = ["optimizer.lr=tag(log,interval(1e-3,1e-2))", "optimizer.weight_decay=choice(0.0,0.01)"]


def _sweep(workdir: Path, *args: str):
    return run_cli(["-m", *QUICK, *args], cwd=workdir)


def _trials(sweep_dir: Path) -> pd.DataFrame:
    return pd.read_csv(sweep_dir / "trials.csv")


def _study_trial_states(sweep_dir: Path) -> list[str]:
    with sqlite3.connect(sweep_dir / "optuna.db") as db:
        return [state for (state,) in db.execute("SELECT state FROM trials ORDER BY number")]


@pytest.fixture(scope="module")
def tpe_sweep(tmp_path_factory) -> tuple[Path, Path, str]:
    """Two trials, then the same command with n_trials=3: (workdir, sweep dir, second output)."""
    workdir = tmp_path_factory.mktemp("sweep")
    first = _sweep(workdir, "sweep=optuna", "hydra.sweeper.n_trials=2", *SEARCH)
    assert first.returncode == 0, first.stderr[-3000:]
    second = _sweep(workdir, "sweep=optuna", "hydra.sweeper.n_trials=3", *SEARCH)
    assert second.returncode == 0, second.stderr[-3000:]
    return workdir, workdir / "outputs" / "ssm4sar" / "sweeps" / "ssm4sar-optuna", second.stdout + second.stderr


def test_the_same_command_continues_the_study(tpe_sweep):
    _, sweep_dir, output = tpe_sweep
    assert "2 trials finished, 1 to run" in output
    assert _study_trial_states(sweep_dir) == ["COMPLETE"] * 3
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == ["trial_0", "trial_1", "trial_2"]


def test_the_summary_lists_every_trial_with_its_run_dir_and_value(tpe_sweep):
    _, sweep_dir, _ = tpe_sweep
    trials = _trials(sweep_dir)
    assert list(trials["number"]) == [0, 1, 2] and set(trials["state"]) == {"COMPLETE"}
    assert {"params_optimizer.lr", "params_optimizer.weight_decay", "run_dir"} <= set(trials.columns)
    for _, trial in trials.iterrows():
        assert read_metrics(Path(trial["run_dir"]))["val/psnr"] == pytest.approx(trial["value"], rel=1e-6)
        assert 1e-3 <= trial["params_optimizer.lr"] <= 1e-2
    best = json.loads((sweep_dir / "best_trial.json").read_text())
    assert best["value"] == pytest.approx(trials["value"].max())  # val/psnr is maximised
    assert best["run_dir"] == trials.loc[trials["value"].idxmax(), "run_dir"]
    assert (sweep_dir / "optimization_history.png").read_bytes()[:4] == b"\x89PNG"


def test_a_finished_study_runs_no_more_trials(tpe_sweep):
    workdir, sweep_dir, _ = tpe_sweep
    again = _sweep(workdir, "sweep=optuna", "hydra.sweeper.n_trials=3", *SEARCH)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "3 trials finished, 0 to run" in again.stdout + again.stderr
    assert len(_study_trial_states(sweep_dir)) == 3


def test_the_shipped_ssm4sar_tpe_sweep_searches_the_seed_space_on_a_log_scale(compose_config):
    cfg = compose_config(["experiment=ssm4sar", "sweep=ssm4sar_tpe"], keep_hydra=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper.params["optimizer.lr"] == "tag(log, interval(0.001, 0.01))"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert sweeper.direction.name == "max" and sweeper.study_name == "ssm4sar-ssm4sar_tpe"
    assert sweeper.sampler.seed == cfg.seed


def test_a_diverging_trial_is_recorded_as_failed_and_the_sweep_goes_on(tmp_path):
    grid = ["sweep=optuna", "hydra/sweeper/sampler=grid", "hydra.sweeper.max_failure_rate=0.5",
            "optimizer.lr=choice(0.001,1e30)"]
    result = _sweep(tmp_path, *grid)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    sweep_dir = tmp_path / "outputs" / "ssm4sar" / "sweeps" / "ssm4sar-optuna"
    trials = _trials(sweep_dir).set_index("params_optimizer.lr")
    assert trials.loc[1e30, "state"] == "FAIL" and "non-finite training loss" in trials.loc[1e30, "failure"]
    assert trials.loc[0.001, "state"] == "COMPLETE"
    assert "failed: TrainingError: non-finite training loss" in output
    assert f"(run dir {trials.loc[1e30, 'run_dir']})" in output


def test_too_many_failures_stop_the_sweep_with_an_error(tmp_path):
    result = _sweep(tmp_path, "sweep=optuna", "hydra/sweeper/sampler=grid", "hydra.sweeper.max_failure_rate=0",
                    "optimizer.lr=choice(1e30,0.001)")
    assert result.returncode == 1
    assert "failed trials exceed hydra.sweeper.max_failure_rate=0" in result.stdout + result.stderr
    states = _study_trial_states(tmp_path / "outputs" / "ssm4sar" / "sweeps" / "ssm4sar-optuna")
    assert states[-1] == "FAIL" and states.count("FAIL") == 1  # stopped at the first failure
