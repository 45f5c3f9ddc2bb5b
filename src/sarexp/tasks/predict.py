"""task=predict: run a checkpoint over the data module's prediction inputs.

Outputs are written by prediction-writer callbacks of the experiment (for SSM4SAR, focused scenes in
`<run dir>/predictions/`), so this task stays the same for every system.
"""

from omegaconf import DictConfig

from sarexp.rundir import record_run_info
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


def predict(cfg: DictConfig) -> None:
    checkpoint = required_checkpoint(cfg.ckpt_path, "predict")
    directory = run_dir(cfg)
    seed = seed_everything(cfg)
    trainer = build_trainer(cfg, build_callbacks(cfg), build_loggers(cfg))
    if trainer.is_global_zero:
        record_run_info(directory, seed)
    with loading(checkpoint):
        trainer.predict(
            build_system(cfg), datamodule=build_datamodule(cfg), ckpt_path=str(checkpoint), return_predictions=False,
            weights_only=True,
        )
