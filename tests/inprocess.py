"""Run sarexp tasks in this process as `python -m sarexp` would (compose, check, dispatch on `task`), for tests
that run many experiments without paying a subprocess start-up for each."""

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from experiment_sizes import QUIET, TINY, ordered, stage_overrides
from sarexp.config.locate import config_dir
from sarexp.config.schema import register_schema


def compose_run(root: Path, run_dir: Path, overrides: list[str], keep_hydra: bool = False) -> DictConfig:
    """The config of a run with data under `root`/data and outputs in `run_dir` (the `hydra` node removed, as
    the task function sees it, unless `keep_hydra`)."""
    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.root_dir={root}", f"paths.run_dir={run_dir}", *overrides],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    if not keep_hydra:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def run_task(cfg: DictConfig) -> Any:
    """What `sarexp.run` does after composing: check the config, then call the task."""
    from sarexp.config.validation import validate_config

    validate_config(cfg)
    return instantiate(cfg.task)(cfg)


def prepared_stages(root: Path, experiment: str, overrides: list[str]) -> list[str]:
    """The clip_checkpoint / vae_checkpoint overrides an LDM experiment needs, training its stages (tiny, with
    `overrides`) into `root`/runs/<stage> unless they are there already; nothing for other experiments."""
    runs = {stage: root / "runs" / stage for stage in ordered([experiment]) if stage != experiment}
    for stage, run_dir in runs.items():
        if not (run_dir / "checkpoints" / "last.ckpt").is_file():
            run_task(compose_run(root, run_dir, [f"experiment={stage}", *TINY[stage], *QUIET, *overrides]))
    return stage_overrides(experiment, runs)
