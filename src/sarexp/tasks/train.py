"""task=train: fit (resuming automatically), then test the best checkpoint; write metrics.json."""

import logging

from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from sarexp.errors import ConfigError
from sarexp.rundir import record_run_info, start_checkpoint, write_metrics
from sarexp.tasks.builders import (
    build_callbacks,
    build_datamodule,
    build_loggers,
    build_system,
    build_trainer,
    log_hyperparameters,
    run_dir,
    seed_everything,
)
from sarexp.tasks.checkpoints import loading

log = logging.getLogger(__name__)


def train(cfg: DictConfig, test: bool = True) -> float | None:
    """Returns the best value of `cfg.monitor` (what a sweeper optimises)."""
    directory = run_dir(cfg)
    seed = seed_everything(cfg)
    datamodule = build_datamodule(cfg)
    system = build_system(cfg)
    loggers = build_loggers(cfg)
    trainer = build_trainer(cfg, build_callbacks(cfg), loggers)
    if trainer.is_global_zero:
        log_hyperparameters(loggers, cfg, record_run_info(directory, seed))

    start = start_checkpoint(directory, cfg.ckpt_path, cfg.resume)
    if start is not None:
        log.info("starting from checkpoint %s", start)
    try:
        with loading(start):
            trainer.fit(system, datamodule=datamodule, ckpt_path=start, weights_only=True)
    except MisconfigurationException as error:
        raise ConfigError(f"monitor={cfg.monitor}: {str(error).splitlines()[0]}") from None
    metrics = dict(trainer.callback_metrics)

    checkpoint = trainer.checkpoint_callback
    best_path = checkpoint.best_model_path if isinstance(checkpoint, ModelCheckpoint) else ""
    if test:
        trainer.test(system, datamodule=datamodule, ckpt_path=best_path or None, weights_only=True)
        metrics.update(trainer.callback_metrics)
    if trainer.is_global_zero:
        write_metrics(directory, metrics)
    return _monitored_value(cfg, checkpoint, metrics)


def _monitored_value(cfg: DictConfig, checkpoint: object, metrics: dict) -> float | None:
    if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_score is not None:
        return float(checkpoint.best_model_score)
    if cfg.monitor in metrics:
        return float(metrics[cfg.monitor])
    log.warning("monitor %s was not logged; logged metrics: %s", cfg.monitor, ", ".join(sorted(metrics)))
    return None
