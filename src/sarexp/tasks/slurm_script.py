"""task=slurm_script: write and print the sbatch script a `launcher=slurm` multirun would submit for this
configuration, without submitting it (check resources before queueing)."""

import logging

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sarexp.launchers.slurm import sbatch_script
from sarexp.tasks.builders import run_dir

log = logging.getLogger(__name__)


def slurm_script(cfg: DictConfig) -> str:
    directory = run_dir(cfg)
    script = sbatch_script(HydraConfig.get().launcher, directory / ".submitit")
    path = directory / "slurm_script.sh"
    path.write_text(script)
    log.info("sbatch script for launcher=slurm written to %s (not submitted)", path)
    print(script)
    return script
