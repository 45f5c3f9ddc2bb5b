"""The sbatch script that `launcher=slurm` would submit, built by Submitit from the resolved launcher
config exactly as Hydra's Submitit launcher builds its executor, but not submitted."""

from pathlib import Path
from typing import Any

from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import DictConfig, OmegaConf

from sarexp.errors import ConfigError

_INIT_KEYS = {"submitit_folder", "max_num_timeout"}


def sbatch_script(launcher: DictConfig, folder: Path, command: str = "python -u -m submitit.core._submit") -> str:
    import submitit

    params: dict[str, Any] = OmegaConf.to_container(launcher, resolve=True)
    target = params.pop("_target_", "")
    if "Slurm" not in target:
        raise ConfigError(f"hydra.launcher is {target or 'not a Submitit launcher'}; choose launcher=slurm")
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=params["max_num_timeout"])
    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{
        key if key in generic else f"slurm_{key}": value for key, value in params.items() if key not in _INIT_KEYS
    })
    return executor._executor._make_submission_file_text(command, uid="preview")
