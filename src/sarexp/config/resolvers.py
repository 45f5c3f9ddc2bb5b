"""OmegaConf resolvers that sarexp configs use (registered with the schema, before composition)."""

import os
from datetime import datetime
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf


def sweep_group() -> str | None:
    """`${sarexp.sweep_group:}`: in a multirun, the sweep dir's last three parts (for example
    `ssm4sar/sweeps/ssm4sar-ssm4sar_tpe`), so all trials of a sweep share one W&B group; else None."""
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None
    return "/".join(Path(str(hydra.sweep.dir)).parts[-3:])


def run_id() -> str:
    """`${sarexp.run_id:}`, the last part of a single run's dir.

    Inside a SLURM job it is the job id (array job and task, and the srun step when there is one):
    every rank of `srun python -m sarexp …` then writes to the same dir, and a requeued job, which keeps
    its id, finds its own `last.ckpt` there. Elsewhere it is the start time to the microsecond, so two
    runs started in the same second get different dirs. Cached: resolved once per process.
    """
    job = os.environ.get("SLURM_JOB_ID")
    if job is None:
        return datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    array_job, array_task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    name = f"slurm-{array_job}_{array_task}" if array_job and array_task else f"slurm-{job}"
    step = os.environ.get("SLURM_STEP_ID")
    return f"{name}.{step}" if step else name


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("sarexp.sweep_group", sweep_group, replace=True)
    OmegaConf.register_new_resolver("sarexp.run_id", run_id, replace=True, use_cache=True)
