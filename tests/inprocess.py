"""Run sarexp tasks in this process as `python -m sarexp` would (compose, check, dispatch on `task`), for tests
that run many experiments without paying a subprocess start-up for each."""

from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from experiment_sizes import QUIET, TINY, ordered, stage_overrides
from sarexp.config.compose import compose_run_config as compose_run


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
