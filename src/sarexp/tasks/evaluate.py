"""task=eval: test a checkpoint on the data module's test split and write metrics.json."""

from omegaconf import DictConfig

from sarexp.rundir import record_run_info, write_metrics
from sarexp.tasks.builders import (
    build_callbacks,
    build_datamodule,
    build_loggers,
    build_system,
    build_trainer,
    run_dir,
    seed_everything,
)
from sarexp.tasks.checkpoints import loading, required_checkpoint


def evaluate(cfg: DictConfig) -> float | None:
    """Returns the test counterpart of `cfg.monitor` (val/x → test/x) when it was logged."""
    checkpoint = required_checkpoint(cfg.ckpt_path, "eval")
    directory = run_dir(cfg)
    seed = seed_everything(cfg)
    trainer = build_trainer(cfg, build_callbacks(cfg), build_loggers(cfg))
    with loading(checkpoint):
        trainer.test(build_system(cfg), datamodule=build_datamodule(cfg), ckpt_path=str(checkpoint), weights_only=True)
    if trainer.is_global_zero:
        record_run_info(directory, seed)
        metrics = write_metrics(directory, dict(trainer.callback_metrics))
    else:
        metrics = {}
    test_key = "test/" + cfg.monitor.split("/", 1)[-1]
    return metrics.get(test_key)
