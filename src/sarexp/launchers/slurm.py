"""The sbatch script that `launcher=slurm` would submit, built by Submitit from the resolved launcher
config exactly as Hydra's Submitit launcher builds its executor, but not submitted."""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sarexp.errors import ConfigError
from sarexp.launchers.submitit_jobs import build_executor


def sbatch_script(launcher: DictConfig, folder: Path, command: str = "python -u -m submitit.core._submit") -> str:
    params: dict[str, Any] = OmegaConf.to_container(launcher, resolve=True)
    target = params.get("_target_", "")
    if "Slurm" not in target:
        raise ConfigError(f"hydra.launcher is {target or 'not a Submitit launcher'}; choose launcher=slurm")
    executor = build_executor(params, "slurm", folder)
    return executor._executor._make_submission_file_text(command, uid="preview")
