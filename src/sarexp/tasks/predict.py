"""task=predict: run a checkpoint over the data module's prediction inputs.

Experiments with a ``scene`` config (MixMAE classifiers, HSI, colorization) predict whole rasters through the
shared scene engine (:mod:`sarexp.tasks.predict_scenes`). Otherwise outputs are written by prediction-writer
callbacks of the experiment (for SSM4SAR, focused scenes in `<run dir>/predictions/`).
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
    from sarexp.tasks.predict_scenes import predict_scenes, wants_scenes

    if wants_scenes(cfg):  # whole scenes through the shared engine (GeoTIFF / COG outputs)
        return predict_scenes(cfg)
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
