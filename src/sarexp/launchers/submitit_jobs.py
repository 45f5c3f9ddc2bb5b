"""Submitit executors built from a resolved launcher config, and job results that survive failed jobs.

Hydra's Submitit launcher collects results with ``job.results()``, which raises as soon as one job of the
array died (killed by the out-of-memory killer, cancelled, a node failure, out of requeues): the whole
sweep would stop and the other trials' results would be lost. Here such a job becomes a FAILED
``JobReturn`` carrying the error and its job dir, which the sweeper records as a failed trial.
"""

from pathlib import Path
from typing import Any, Callable

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import DictConfig, OmegaConf, open_dict

_INIT_KEYS = {"submitit_folder", "max_num_timeout"}


def build_executor(params: dict[str, Any], cluster: str, folder: Path | str) -> Any:
    """A ``submitit.AutoExecutor`` with the launcher's parameters, mapped as Hydra's launcher maps them:
    generic names as they are, cluster-specific ones prefixed with the cluster name."""
    import submitit

    init = {f"{cluster}_max_num_timeout": params["max_num_timeout"]} if "max_num_timeout" in params else {}
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster, **init)
    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{
        key if key in generic else f"{cluster}_{key}": value
        for key, value in params.items() if key not in _INIT_KEYS and key != "_target_"
    })
    return executor


def collect(jobs: list[Any], failed: Callable[[int, BaseException], JobReturn]) -> list[JobReturn]:
    """Rank 0's `JobReturn` of every job, or `failed(index, error)` for a job that died."""
    returns = []
    for index, job in enumerate(jobs):
        try:
            returns.append(job.results()[0])
        except Exception as error:  # submitit's FailedJobError, UncompletedJobError, …
            returns.append(failed(index, error))
    return returns


def failed_job_return(config: DictConfig, overrides: list[str], job_num: int, error: BaseException) -> JobReturn:
    """A FAILED `JobReturn` whose `hydra_cfg` names the job dir the job would have written."""
    with open_dict(config.hydra):
        config.hydra.job.num = job_num
        config.hydra.runtime.output_dir = str(Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir))
    result = JobReturn(overrides=overrides, hydra_cfg=config, status=JobStatus.FAILED)
    result.return_value = RuntimeError(f"the cluster job died: {str(error).strip().splitlines()[0]}")
    return result
