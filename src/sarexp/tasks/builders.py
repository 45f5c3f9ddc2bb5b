"""Build the run's objects from config: seed, data module, system, callbacks, loggers, trainer."""

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.utils import instantiate
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from sarexp.io.atomic_checkpoint import AtomicCheckpointIO
from sarexp.config.model_options import model_options, without_model_options
from sarexp.errors import ConfigError

log = logging.getLogger(__name__)


def run_dir(cfg: DictConfig) -> Path:
    path = Path(cfg.paths.run_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(cfg: DictConfig) -> int:
    """Seed python, numpy and torch, and dataloader workers through Lightning."""
    return pl.seed_everything(cfg.seed, workers=True, verbose=False)


def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    return instantiate(cfg.data, _convert_="object")


def build_system(cfg: DictConfig) -> pl.LightningModule:
    """The system with its network; `model.compile=true` compiles that network here, once for every system."""
    system = instantiate(without_model_options(cfg).system, _convert_="object")
    if model_options(cfg)["compile"]:
        compile_network(system)
    return system


def compile_network(system: pl.LightningModule) -> None:
    """`torch.compile` the system's `net` in place (`nn.Module.compile`): the module tree and the state-dict
    keys stay as they are, so checkpoints of compiled and plain runs load into each other."""
    net = getattr(system, "net", None)
    if not isinstance(net, nn.Module):
        raise ConfigError(f"model.compile=true: {type(system).__name__} has no `net` module to compile; "
                          "set model.compile=false")
    net.compile()
    log.info("model.compile=true: %s.net (%s) compiled with torch.compile",
             type(system).__name__, type(net).__name__)


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    return _instantiate_each(cfg.get("callbacks"))


def build_loggers(cfg: DictConfig) -> list[Logger]:
    return _instantiate_each(cfg.get("logger"))


def build_trainer(cfg: DictConfig, callbacks: list[pl.Callback], loggers: list[Logger]) -> pl.Trainer:
    """The Trainer of `trainer.*`, writing checkpoints atomically unless a CheckpointIO plugin is configured."""
    plugins = list(instantiate(cfg.trainer.get("plugins") or [], _convert_="object"))
    if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
        plugins.append(AtomicCheckpointIO())
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins,
                       _convert_="object")


def _instantiate_each(group: DictConfig | None) -> list[Any]:
    """Instantiate every `_target_` entry of a name → config mapping (entries set to null are skipped)."""
    if not group:
        return []
    return [instantiate(node, _convert_="object") for node in group.values() if node is not None]


def log_hyperparameters(loggers: list[Logger], cfg: DictConfig, run_info: dict[str, Any]) -> None:
    """Attach the resolved config and the run info (git commit, seed, host) to every logger."""
    resolved = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    resolved["run_info"] = run_info
    for logger in loggers:
        logger.log_hyperparams(resolved)
