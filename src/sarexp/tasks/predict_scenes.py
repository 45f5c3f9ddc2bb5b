"""task=predict over whole scenes: for experiments with a ``scene`` config (conf/scene/), GeoTIFFs and other
rasters in ``data.predict_inputs`` go through the shared scene engine (:mod:`sarexp.scenes.engine`) instead of
the data module's prediction loader.

The model, data and system settings come from the run that wrote ``ckpt_path`` (its ``.hydra/config.yaml``,
:mod:`sarexp.tasks.source_config`; for colorization also its ``clip_checkpoint`` / ``vae_checkpoint``), so
``task=predict ckpt_path=… data.predict_inputs=[scene.tif]`` needs no repetition of the training command line.
"""

from types import SimpleNamespace

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from sarexp.io.checkpoint_io import load_weights_file
from sarexp.rundir import record_run_info
from sarexp.tasks.builders import build_datamodule, build_loggers, build_system, run_dir, seed_everything
from sarexp.tasks.checkpoints import loading
from sarexp.tasks.source_config import run_checkpoint, training_run_config

ENCODER_KEYS = ("clip_checkpoint", "vae_checkpoint")  # top-level keys colorization's system group interpolates


def wants_scenes(cfg: DictConfig) -> bool:
    """Whether the experiment predicts scenes: a ``scene`` config composed, or, for a bare ``task=predict
    ckpt_path=…``, one in the config of the run that wrote the checkpoint (then taken into cfg)."""
    if cfg.get("scene") is not None:
        return True
    checkpoint = cfg.get("ckpt_path")
    config = training_run_config(Path(checkpoint)) if checkpoint and Path(checkpoint).is_file() else None
    scene = OmegaConf.load(config).get("scene") if config is not None else None
    if scene is None:
        return False
    with open_dict(cfg):
        cfg.scene = scene
    return True


def predict_scenes(cfg: DictConfig) -> None:
    checkpoint = run_checkpoint(cfg, "predict", ENCODER_KEYS)
    directory = run_dir(cfg)
    record_run_info(directory, seed_everything(cfg))
    engine = instantiate(cfg.scene, _convert_="object")
    datamodule = build_datamodule(cfg)
    system = build_system(cfg)
    with loading(checkpoint):
        system.load_state_dict(load_weights_file(checkpoint, "ckpt_path")["state_dict"])
    loggers = build_loggers(cfg)
    inputs = list(getattr(datamodule, "predict_inputs", None) or [])
    engine.run(system, datamodule, inputs, checkpoint, SimpleNamespace(loggers=loggers, global_step=0))
    for logger in loggers:
        logger.finalize("success")
