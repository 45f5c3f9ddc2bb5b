"""Compose a run's config in this process exactly as `python -m sarexp` does, for code that runs tasks
without the CLI (tests, benchmarks, notebooks): the same search path, schema and `${hydra:…}` resolution."""

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from sarexp.config.locate import config_dir
from sarexp.config.schema import register_schema


def compose_run_config(root_dir: Path, run_dir: Path, overrides: list[str], keep_hydra: bool = False) -> DictConfig:
    """The config of a run with `paths.root_dir=root_dir` (data under it) and outputs in `run_dir`.

    The `hydra` node is set as the current HydraConfig (interpolations such as `${hydra:runtime.choices…}`
    resolve) and then removed, as the task function sees it, unless `keep_hydra`."""
    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.root_dir={root_dir}", f"paths.run_dir={run_dir}", *overrides],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    if not keep_hydra:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg
