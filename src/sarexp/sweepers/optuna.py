"""Hydra's Optuna sweeper with a study that survives: run the same sweep command again and it goes on.

Differences from ``hydra_plugins.hydra_optuna_sweeper`` (whose search-space parsing is reused):

- ``n_trials`` is the size of the study, not of this invocation: trials already finished in the storage
  count, so an interrupted sweep resumes where it stopped and a finished one does nothing.
- Job numbers are Optuna trial numbers, so a resumed sweep never reuses a finished trial's run dir.
- ``direction`` accepts the experiment's ``monitor_mode`` (min/max) as well as minimize/maximize.
- A failed trial (exception, non-finite or missing objective) is recorded as FAIL with its run dir and
  the sweep goes on until failures exceed ``max_failure_rate × n_trials`` of this invocation.
- ``trials.csv``, ``best_trial.json`` and ``optimization_history.png`` are rewritten after every batch.
"""

import functools
import logging
import math
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from optuna.trial import TrialState

from sarexp.sweepers.summary import write_summary

log = logging.getLogger(__name__)

_DIRECTIONS = {"min": "minimize", "max": "maximize", "minimize": "minimize", "maximize": "maximize"}
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class PersistentStudySweep(OptunaSweeperImpl):
    """The sweep loop behind ``hydra_plugins.sarexp.sweeper.PersistentOptunaSweeper``."""

    def _get_directions(self) -> list[str]:
        directions = self.direction if isinstance(self.direction, Sequence) and not isinstance(
            self.direction, str) else [self.direction]
        names = [str(d.name if isinstance(d, Enum) else d) for d in directions]
        unknown = [name for name in names if name not in _DIRECTIONS]
        if unknown or len(names) != 1:
            raise SystemExit(f"error: hydra.sweeper.direction={names} must be one of min, max, minimize, maximize "
                             "(sarexp sweeps optimise the single monitored metric)")
        return [_DIRECTIONS[name] for name in names]

    def sweep(self, arguments: list[str]) -> None:
        self._process_searchspace_config()
        distributions, fixed = create_params_from_overrides(self._parse_sweeper_params_config() + list(arguments))
        distributions = {**(self.search_space_distributions or {}), **distributions}
        for name in fixed:
            distributions.pop(name, None)
        sampler, n_trials = self._sampler_for(distributions)

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(study_name=self.study_name, storage=self.storage, sampler=sampler,
                                    directions=self._get_directions(), load_if_exists=True)
        finished = len(study.get_trials(deepcopy=False, states=_FINISHED))
        to_go = max(n_trials - finished, 0)
        log.info("study %s in %s: %d trials finished, %d to run (n_trials=%d)",
                 study.study_name, self.storage, finished, to_go, n_trials)

        allowed_failures = self.max_failure_rate * to_go
        failures = 0
        while to_go > 0:
            trials = [study.ask() for _ in range(min(to_go, self.n_jobs))]
            overrides = self._configure_trials(trials, distributions, fixed)
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
            for trial, job in zip(trials, returns):
                failures += not self._record(study, trial, job)
            write_summary(study, sweep_dir)
            to_go -= len(trials)
            if failures > allowed_failures:
                log.error("%d failed trials exceed hydra.sweeper.max_failure_rate=%s of %d; stopping the sweep "
                          "(see %s)", failures, self.max_failure_rate, n_trials, sweep_dir / "trials.csv")
                raise SystemExit(1)
        write_summary(study, sweep_dir)
        if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            log.info("best trial %d: value %s, params %s", study.best_trial.number, study.best_value,
                     study.best_params)

    def _sampler_for(self, distributions: dict[str, Any]) -> tuple[optuna.samplers.BaseSampler, int]:
        """A grid sampler gets its grid from the search space; the grid's size caps the trial count."""
        if isinstance(self.sampler, functools.partial) and self.sampler.func is optuna.samplers.GridSampler:
            grid = {name: self._to_grid_sampler_choices(d) for name, d in distributions.items()}
            return self.sampler(grid), min(self.n_trials, math.prod(len(choices) for choices in grid.values()))
        return self.sampler, self.n_trials

    def _record(self, study: optuna.Study, trial: optuna.Trial, job: JobReturn) -> bool:
        """Tell the study how the trial's job ended; False when it failed."""
        run_dir = str(job.hydra_cfg.hydra.runtime.output_dir) if job.hydra_cfg is not None else None
        if run_dir is not None:
            trial.set_user_attr("run_dir", run_dir)
        value, reason = _objective(job)
        if reason is not None:
            trial.set_user_attr("failure", reason)
            _tell(study, trial, state=TrialState.FAIL)
            log.warning("trial %d failed: %s (run dir %s)", trial.number, reason, run_dir)
            return False
        _tell(study, trial, values=[value])
        return True


def _tell(study: optuna.Study, trial: optuna.Trial, **outcome: Any) -> None:
    """`study.tell`, tolerating Optuna 2's grid sampler, which calls `study.stop()` after the last grid
    point and raises outside `optimize()`; the trial's state is stored before that."""
    try:
        study.tell(trial, **outcome)
    except RuntimeError as error:
        if "Study.stop" not in str(error):
            raise


def _objective(job: JobReturn) -> tuple[float | None, str | None]:
    """The job's float objective, or why there is none."""
    if job.status != JobStatus.COMPLETED:
        error = job._return_value
        return None, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
    value = job._return_value
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None, f"the task returned {value!r}, not a number (is the monitored metric logged?)"
    if not math.isfinite(value):
        return None, f"the objective is {value}"
    return value, None
