"""OmegaConf resolvers that sarexp configs use (registered with the schema, before composition)."""

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


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("sarexp.sweep_group", sweep_group, replace=True)
