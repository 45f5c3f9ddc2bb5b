"""Every shipped experiment at a tiny size: overrides of data and model size only (plus what a size implies:
the metric crop border of a smaller image, synthetic data for a preset that expects the real dataset), so a
test trains the experiment's own trainer, schedule, callbacks and validation settings in seconds."""

from pathlib import Path
from typing import Callable

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from cli_helpers import TINY as TINY_SSM4SAR
from sarexp.config.locate import config_dir
from sarexp.config.schema import register_schema
from sarexp.tasks.builders import build_datamodule, build_system
from sarexp.tasks.train import train

EXPERIMENTS = sorted(path.stem for path in (config_dir() / "experiment").glob("*.yaml"))

QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]
_SSM4SAR = [*TINY_SSM4SAR, "data.simulator.n_azimuth=128"]
_BIGEARTHNET = ["data.synthetic=true", "data.simulator.patches={train:12,validation:4,test:4}", "data.image_size=32",
                "data.batch_size=4", "data.val_batch_size=4"]
_MIXMIM = ["model.embed_dim=8", "model.depths=[1,1,1,1]", "model.num_heads=[1,1,2,2]"]
_MIXMIM_DECODER = ["model.decoder_dim=8", "model.decoder_depth=1", "model.decoder_num_heads=1"]
_SEN12FLOOD = ["data.synthetic=true", "data.simulator.folders={train:8,test:2}", "data.simulator.dates=2",
               "data.simulator.size=128", "data.image_size=128", "data.batch_size=2", "data.val_batch_size=2"]
_WAVEMODE = ["data.image_size=16", "data.generator.counts={train:2,val:1,test:1}", "data.batch_size=4",
             "data.val_batch_size=6"]
_HDF5 = ["data.image_size=16", "data.generator.counts={train:12,val:4,test:4}", "data.batch_size=4",
         "data.val_batch_size=4"]
_FEATURE_CNN = ["model.widths=[8,16]", "model.feature_dim=16"]
_UNET = ["model.model_channels=8", "diffusion.steps=20", "callbacks.diffusion_samples.num_samples=2",
         "callbacks.diffusion_samples.sampler.steps=2"]
_ARAD = ["data.synthetic=true", "data.simulator.height=32", "data.simulator.width=40",
         "data.simulator.scenes={train:2,validation:1,test:1}", "data.patch_size=16", "data.stride=16",
         "data.batch_size=2", "data.val_batch_size=1", "system.metrics.crop_border=4"]
_MSTPP = ["model.stage=1", "model.num_blocks=[1,1,1]"]
_CSWIN = ["model.dim=8", "model.depths=[1,1,1]", "model.heads=[2,2,2]", "model.splits=[4,4,4]",
          "model.norm_groups=4", "model.noise_embed_dim=8", "system.discriminator.dim=8",
          "system.discriminator.stages=2", "system.discriminator.heads=2", "system.discriminator.out_channels=8",
          "system.eval_tile=null", "system.adversarial.iters=2"]
_COLORIZATION = ["data.image_size=16", "data.simulator.scenes=6", "data.simulator.patches_per_scene=4",
                 "data.batch_size=4", "data.val_batch_size=4"]
_CLIP = ["model.embed_dim=8", "model.text.hidden_size=16", "model.text.num_attention_heads=2",
         "model.text.num_hidden_layers=1", "model.text.max_position_embeddings=16", "model.text.vocab_size=64",
         "model.image.channels=[8,8]"]
_VAE = ["model.block_out_channels=[8,8,8,8]", "model.layers_per_block=1", "model.norm_num_groups=4"]
_LDM_UNET = ["model.sample_size=2", "model.block_out_channels=[16,32]",
             "model.down_block_types=[CrossAttnDownBlock2D,DownBlock2D]",
             "model.up_block_types=[UpBlock2D,CrossAttnUpBlock2D]", "model.layers_per_block=1",
             "model.attention_head_dim=2", "model.cross_attention_dim=16", "model.norm_num_groups=8"]

TINY: dict[str, list[str]] = {
    "colorization_clip": [*_COLORIZATION, *_CLIP],
    "colorization_clip_paper": [*_COLORIZATION, *_CLIP],
    "colorization_ldm": [*_COLORIZATION, *_LDM_UNET],
    "colorization_ldm_paper": [*_COLORIZATION, *_LDM_UNET],
    "colorization_season_classifier": [*_COLORIZATION, *_FEATURE_CNN],
    "colorization_vae": [*_COLORIZATION, *_VAE],
    "colorization_vae_paper": [*_COLORIZATION, *_VAE],
    "hsi_cswin_gan": [*_ARAD, *_CSWIN],
    "hsi_cswin_gan_paper": [*_ARAD, *_CSWIN],
    "hsi_mstpp": [*_ARAD, *_MSTPP],
    "hsi_mstpp_paper": [*_ARAD, *_MSTPP],
    "mixmae_benv1": [*_BIGEARTHNET, *_MIXMIM, *_MIXMIM_DECODER],
    "mixmae_benv1_ft": [*_BIGEARTHNET, *_MIXMIM],
    "mixmae_benv1_ft_paper": [*_BIGEARTHNET, *_MIXMIM],
    "mixmae_benv1_paper": [*_BIGEARTHNET, *_MIXMIM, *_MIXMIM_DECODER],
    "mixmae_benv2": [*_BIGEARTHNET, *_MIXMIM, *_MIXMIM_DECODER],
    "mixmae_benv2_ft": [*_BIGEARTHNET, *_MIXMIM],
    "mixmae_benv2_ft_paper": [*_BIGEARTHNET, *_MIXMIM],
    "mixmae_benv2_paper": [*_BIGEARTHNET, *_MIXMIM, *_MIXMIM_DECODER],
    "mixmae_sen12flood_ft": [*_SEN12FLOOD, *_MIXMIM],
    "mixmae_sen12flood_ft_paper": [*_SEN12FLOOD, *_MIXMIM],
    "pdm_feature_extractor": [*_WAVEMODE, *_FEATURE_CNN],
    "pdm_feature_extractor_insar": [*_HDF5, *_FEATURE_CNN],
    "pdm_insar_noise": [*_HDF5, *_UNET],
    "pdm_insar_phase": [*_HDF5, *_UNET],
    "pdm_sar_lowres": [*_WAVEMODE, *_UNET],
    "pdm_sar_superres": [*_WAVEMODE, "data.low_res_size=8", *_UNET],
    "ssm4sar": _SSM4SAR,
    "ssm4sar_long_aperture": [*_SSM4SAR, "data.simulator.params.near_range=60000.0"],
}

# The later stage reads the checkpoints of earlier stages (top-level key → that stage's experiment suffix).
UPSTREAM = {"clip_checkpoint": ("_ldm", "_clip"), "vae_checkpoint": ("_ldm", "_vae")}


def tiny_overrides(experiment: str, compose: Callable[[list[str]], DictConfig], directory: Path) -> list[str]:
    """`experiment=NAME` at its tiny size, quiet, with tiny checkpoints of its earlier stages written to
    `directory` (saved the way their systems save them, so the later stage can load them)."""
    overrides = [f"experiment={experiment}", *TINY[experiment], *QUIET]
    for key, (stage, upstream_stage) in UPSTREAM.items():
        if stage in experiment:
            upstream = experiment.replace(stage, upstream_stage)
            cfg = compose([f"experiment={upstream}", *TINY[upstream], f"data.root={directory / 'upstream'}"])
            system, datamodule = build_system(cfg), build_datamodule(cfg)
            datamodule.prepare_data()  # the tokenizer's vocabulary comes from the synthetic prompts
            for tower in system.children():
                if hasattr(tower, "prepare"):
                    tower.prepare(datamodule)
            checkpoint = {"state_dict": system.state_dict()}
            system.on_save_checkpoint(checkpoint)
            path = directory / f"{upstream}.ckpt"
            torch.save(checkpoint, path)
            overrides.append(f"{key}={path}")
    return overrides


def compose_in(root: Path, overrides: list[str]) -> DictConfig:
    """The config the CLI composes for `overrides`, paths under `root` (as tests/conftest.py's fixture)."""
    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.root_dir={root}", f"paths.run_dir={root / 'run'}", *overrides],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def train_in(root: str, overrides: list[str]) -> None:
    """task=train without the test stage, as a process of its own runs it (the target of a child process)."""
    train(compose_in(Path(root), overrides), test=False)
