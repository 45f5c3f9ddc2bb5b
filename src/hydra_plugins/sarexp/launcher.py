"""``hydra.launcher._target_`` for `launcher=slurm` and `launcher=submitit_local`.

Hydra's Submitit launchers with two changes:
- in a multi-task (DDP) job only rank 0 writes `.hydra/` and `run.log`;
- a job that dies (killed, cancelled, out of requeues) is returned as a failed job instead of aborting
  the whole sweep (see ``sarexp.launchers.submitit_jobs``).
Requeue after preemption keeps Hydra's behaviour: the same call, hence the same job dir, whose
`checkpoints/last.ckpt` the train task resumes from.
"""

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides, run_job, setup_globals
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import open_dict

from sarexp.errors import SarexpError

log = logging.getLogger(__name__)


class _SarexpSubmitit:
    def __call__(self, sweep_overrides: list[str], job_dir_key: str, job_num: int, job_id: str,
                 singleton_state: dict[type, Singleton]) -> JobReturn:
        import submitit

        from sarexp.launchers.jobs import keep_outputs_to_rank_zero

        environment = submitit.JobEnvironment()
        logging.getLogger("submitit").info(
            "rank %d of %d on node %s", environment.global_rank, environment.num_tasks,
            os.environ.get("SLURMD_NODENAME", environment.hostname))
        Singleton.set_state(singleton_state)
        setup_globals()
        config = self.hydra_context.config_loader.load_sweep_config(self.config, sweep_overrides)
        with open_dict(config.hydra.job):
            config.hydra.job.id = environment.job_id
            config.hydra.job.num = job_num
        keep_outputs_to_rank_zero(config, environment.global_rank)
        return run_job(hydra_context=self.hydra_context, task_function=self.task_function, config=config,
                       job_dir_key=job_dir_key, job_subdir_key="hydra.sweep.subdir")

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from sarexp.launchers.submitit_jobs import build_executor, collect, failed_job_return

        executor = build_executor(self.params, self._EXECUTOR, self.params["submitit_folder"])
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, int(str(self.config.hydra.sweep.mode), 8))
        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {sweep_dir}")
        numbers = [initial_job_idx + index for index in range(len(job_overrides))]
        for number, overrides in zip(numbers, job_overrides):
            log.info(f"\t#{number} : {' '.join(filter_overrides(overrides))}")
        arguments = [(list(overrides), "hydra.sweep.dir", number, f"job_id_for_{number}", Singleton.get_state())
                     for number, overrides in zip(numbers, job_overrides)]
        jobs = self._submit(executor, arguments)

        def failed(index: int, error: BaseException) -> JobReturn:
            overrides = list(job_overrides[index])
            config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            log.error("job #%d (%s) died: %s", numbers[index], jobs[index].job_id, str(error).strip().splitlines()[0])
            return failed_job_return(config, overrides, numbers[index], error)

        return collect(jobs, failed)


    def _submit(self, executor: object, arguments: list[tuple]) -> list:
        return executor.map_array(self, *zip(*arguments))


class SarexpSlurmLauncher(_SarexpSubmitit, SlurmLauncher):
    """Submits to SLURM (`sbatch`, one array per batch of jobs); a request SLURM refuses, or accepts but can
    never start (see ``sarexp.launchers.pending``), ends the launch with one line."""

    def _submit(self, executor: object, arguments: list[tuple]) -> list:
        from submitit.core.utils import FailedJobError

        from sarexp.launchers.pending import submission_error, wait_until_started

        try:
            try:
                jobs = executor.map_array(self, *zip(*arguments))
            except FailedJobError as error:
                raise submission_error(error, self.params) from None
            wait_until_started([job.job_id for job in jobs], self.params)
        except SarexpError as error:  # outside the task function: print it as run.py does, no traceback
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        return jobs


class SarexpLocalLauncher(_SarexpSubmitit, LocalLauncher):
    """Runs the jobs as local subprocesses through Submitit (for trying a launch without a cluster)."""
