"""A sweep's summary in its sweep dir, rewritten after every batch of trials: a CSV of trials, the best
trial as JSON and an optimization-history plot. Each file is replaced atomically, so a reader never sees
half a table while the sweep runs."""

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

TRIALS_CSV = "trials.csv"
BEST_TRIAL_JSON = "best_trial.json"
HISTORY_PNG = "optimization_history.png"
_TRIAL_ATTRIBUTES = ("user_attrs_run_dir", "user_attrs_failure")


def write_summary(study: optuna.Study, directory: Path) -> None:
    trials = study.get_trials(deepcopy=False)
    _replace(directory / TRIALS_CSV, lambda path: _trials_table(study).to_csv(path, index=False))
    best = _best_trial(study)
    if best is not None:
        payload = {"number": best.number, "value": best.value, "params": best.params,
                   "run_dir": best.user_attrs.get("run_dir")}
        _replace(directory / BEST_TRIAL_JSON, lambda path: path.write_text(json.dumps(payload, indent=2) + "\n"))
    _replace(directory / HISTORY_PNG, lambda path: _plot_history(trials, _maximize(study), path))


def _trials_table(study: optuna.Study) -> Any:
    """One row per trial: number, state, value, the searched parameters, run dir and failure reason.

    The fixed overrides of the command (stored by the sweeper as user attributes) are left out: they are
    the same for every trial and recorded in each run dir's `.hydra/overrides.yaml`."""
    table = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs",
                                          "datetime_start", "datetime_complete"))
    kept = [c for c in table.columns if not c.startswith("user_attrs_") or c in _TRIAL_ATTRIBUTES]
    return table[kept].rename(columns=lambda column: column.removeprefix("user_attrs_"))


def _best_trial(study: optuna.Study) -> FrozenTrial | None:
    return study.best_trial if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) else None


def _maximize(study: optuna.Study) -> bool:
    return study.direction == optuna.study.StudyDirection.MAXIMIZE


def _plot_history(trials: list[FrozenTrial], maximize: bool, path: Path) -> None:
    """Objective value of each complete trial and the best value so far; failed trials as ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)]
    failed = [t.number for t in trials if t.state == TrialState.FAIL]
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    if complete:
        numbers = [t.number for t in complete]
        values = [t.value for t in complete]
        best, running = [], None
        for value in values:
            running = value if running is None else (max(running, value) if maximize else min(running, value))
            best.append(running)
        axes.scatter(numbers, values, s=18, label="trial")
        axes.step(numbers, best, where="post", color="tab:red", label="best so far")
    for number in failed:
        axes.axvline(number, color="0.7", linestyle=":", linewidth=1)
    axes.set_xlabel("trial" + (" (dotted: failed)" if failed else ""))
    axes.set_ylabel("objective (" + ("maximize" if maximize else "minimize") + ")")
    axes.set_title("optimization history")
    if complete:
        axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def _replace(path: Path, write: Any) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
