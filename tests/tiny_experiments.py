"""Every shipped experiment at its tiny size (tests/experiment_sizes.py) in this process: a test trains the
experiment's own trainer, schedule, callbacks and validation settings in seconds. A later stage gets freshly
initialised checkpoints of its earlier stages, so it needs no earlier run."""

from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig

from experiment_sizes import QUIET, TINY, shipped_experiments
from inprocess import compose_run
from sarexp.tasks.builders import build_datamodule, build_system
from sarexp.tasks.train import train

EXPERIMENTS = shipped_experiments()

# The later stage reads the checkpoints of earlier stages (top-level key → that stage's experiment suffix).
UPSTREAM = {"clip_checkpoint": ("_ldm", "_clip"), "vae_checkpoint": ("_ldm", "_vae")}


def upstream_checkpoints(compose: Callable[[list[str]], DictConfig], experiment: str, directory: Path,
                         sizes: dict[str, list[str]] | None = None) -> list[str]:
    """Overrides that point a later stage at freshly initialised checkpoints of its earlier stages (at `sizes`,
    shipped sizes by default), saved the way their systems save them (with their exports), in `directory`."""
    overrides = []
    for key, (stage, upstream_stage) in UPSTREAM.items():
        if stage not in experiment:
            continue
        upstream = experiment.replace(stage, upstream_stage)
        cfg = compose([f"experiment={upstream}", *(sizes or {}).get(upstream, []),
                       f"data.root={directory / 'upstream'}"])
        system, datamodule = build_system(cfg), build_datamodule(cfg)
        datamodule.prepare_data()  # the synthetic default: the tokenizer's vocabulary comes from its prompts
        for tower in system.children():  # as the system's setup does: the text tower builds its tokenizer
            if hasattr(tower, "prepare"):
                tower.prepare(datamodule)
        checkpoint = {"state_dict": system.state_dict()}
        system.on_save_checkpoint(checkpoint)
        path = directory / f"{upstream}.ckpt"
        torch.save(checkpoint, path)
        overrides.append(f"{key}={path}")
    return overrides


def tiny_overrides(experiment: str, compose: Callable[[list[str]], DictConfig], directory: Path) -> list[str]:
    """`experiment=NAME` at its tiny size, quiet, with tiny checkpoints of its earlier stages in `directory`."""
    return [f"experiment={experiment}", *TINY[experiment], *QUIET,
            *upstream_checkpoints(compose, experiment, directory, TINY)]


def compose_in(root: Path, overrides: list[str]) -> DictConfig:
    """The config the CLI composes for `overrides`, paths under `root` (as tests/conftest.py's fixture)."""
    return compose_run(root, root / "run", overrides)


def train_in(root: str, overrides: list[str]) -> None:
    """task=train without the test stage, as a process of its own runs it (the target of a child process)."""
    train(compose_in(Path(root), overrides), test=False)
