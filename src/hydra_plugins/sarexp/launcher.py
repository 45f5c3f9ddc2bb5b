"""``hydra.launcher._target_`` for `launcher=slurm` and `launcher=submitit_local`.

Hydra's Submitit launchers, except that in a multi-task (DDP) job only rank 0 writes `.hydra/` and
`run.log`. Requeue after preemption keeps Hydra's behaviour: the same call, hence the same job dir,
whose `checkpoints/last.ckpt` the train task resumes from.
"""

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, run_job, setup_globals
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import open_dict


class _RankAwareCall:
    def __call__(self, sweep_overrides: list[str], job_dir_key: str, job_num: int, job_id: str,
                 singleton_state: dict[type, Singleton]) -> JobReturn:
        import submitit

        from sarexp.launchers.jobs import keep_outputs_to_rank_zero

        environment = submitit.JobEnvironment()
        Singleton.set_state(singleton_state)
        setup_globals()
        config = self.hydra_context.config_loader.load_sweep_config(self.config, sweep_overrides)
        with open_dict(config.hydra.job):
            config.hydra.job.id = environment.job_id
            config.hydra.job.num = job_num
        keep_outputs_to_rank_zero(config, environment.global_rank)
        return run_job(hydra_context=self.hydra_context, task_function=self.task_function, config=config,
                       job_dir_key=job_dir_key, job_subdir_key="hydra.sweep.subdir")


class SarexpSlurmLauncher(_RankAwareCall, SlurmLauncher):
    """Submits to SLURM (`sbatch`, one array per batch of jobs)."""


class SarexpLocalLauncher(_RankAwareCall, LocalLauncher):
    """Runs the jobs as local subprocesses through Submitit (for trying a launch without a cluster)."""
