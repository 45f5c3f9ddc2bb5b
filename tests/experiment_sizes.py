"""Tiny sizes for every shipped experiment: overrides of data and model size only, so tests that run all of
`conf/experiment/` (DDP, GPU, device placement) check the shipped settings at a size that runs in seconds.

`paper` presets keep their own settings (DDP trainer, precision, schedules); only their sizes shrink and
`data.synthetic=true` points them at generated data instead of a dataset that is not here. The colorization LDMs
need the text encoder and VAE of earlier stages: `LDM_STAGES` names the experiments whose last checkpoints they
take, so those run first (`ordered`). Every size gives at least 3 training batches per epoch in one process
(tests/test_final_checkpoint.py ends a 3-batch run of each).
"""

from pathlib import Path

QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]

_SSM4SAR = ["data.simulator.n_azimuth=256", "data.simulator.n_range=32", "data.simulator.scenes={training:1,validation:1}",
            "data.simulator.chunks=[128,16]", "data.simulator.point_targets=2", "data.patch_length=64", "data.stride=64",
            "data.batch_size=4", "data.val_batch_size=8", "data.predict_overlap=16", "model.d_model=8",
            "model.num_layers=1", "model.hidden_state_size=8"]
_BEN = ["data.simulator.patches={train:8,validation:4,test:4}", "data.batch_size=2", "data.val_batch_size=2"]
_MIXMIM_SIZE = ["model.embed_dim=16", "model.depths=[1,1,2,1]", "model.num_heads=[1,2,4,8]"]
_MIXMIM_DECODER = ["model.decoder_dim=32", "model.decoder_depth=1", "model.decoder_num_heads=2"]
_FLOOD = ["data.simulator.folders={train:4,test:2}", "data.simulator.dates=2", "data.simulator.size=128",
          "data.image_size=128", "data.batch_size=1", "data.val_batch_size=1"]
_PDM = ["data.image_size=16", "data.generator.counts={train:2,val:1,test:1}", "data.batch_size=4",
        "data.val_batch_size=4", "model.model_channels=8", "model.attention_resolutions=[4]", "diffusion.steps=20",
        "callbacks.diffusion_samples.num_samples=2", "callbacks.diffusion_samples.sampler.steps=2"]
_INSAR = ["data.image_size=16", "data.generator.counts={train:12,val:4,test:4}", "data.batch_size=4",
          "data.val_batch_size=4", "model.model_channels=8", "model.attention_resolutions=[4]", "diffusion.steps=20",
          "callbacks.diffusion_samples.num_samples=2", "callbacks.diffusion_samples.sampler.steps=2"]
_FEATURES = ["data.image_size=16", "data.batch_size=4", "data.val_batch_size=4", "model.widths=[4,8]",
             "model.feature_dim=8"]
_ARAD = ["data.simulator.scenes={train:2,validation:1,test:1}", "data.simulator.height=32", "data.simulator.width=40",
         "data.patch_size=16", "data.stride=16", "data.batch_size=2", "data.val_batch_size=1", "data.num_workers=0"]
_MSTPP = [*_ARAD, "model.stage=1", "system.metrics.crop_border=4"]
_GAN = [*_ARAD, "model.dim=8", "model.noise_embed_dim=8", "model.norm_groups=4", "system.discriminator.dim=8",
        "system.discriminator.out_channels=8", "system.metrics.crop_border=4", "system.adversarial.iters=4"]
_COLOR = ["data.image_size=32", "data.simulator.scenes=12", "data.simulator.patches_per_scene=2", "data.batch_size=4",
          "data.val_batch_size=4"]
_CLIP = ["model.embed_dim=8", "model.text.hidden_size=16", "model.text.num_hidden_layers=1",
         "model.text.num_attention_heads=2", "model.text.max_position_embeddings=32", "model.text.vocab_size=64",
         "model.image.channels=[8,16]"]
_VAE = ["model.block_out_channels=[8,8,8,8]", "model.layers_per_block=1", "model.norm_num_groups=4"]
_UNET = ["model.block_out_channels=[16,32]", "model.down_block_types=[CrossAttnDownBlock2D,DownBlock2D]",
         "model.up_block_types=[UpBlock2D,CrossAttnUpBlock2D]", "model.layers_per_block=1", "model.attention_head_dim=2",
         "model.cross_attention_dim=16", "model.norm_num_groups=8", "model.sample_size=4"]

TINY: dict[str, list[str]] = {
    "ssm4sar": _SSM4SAR,
    "ssm4sar_long_aperture": [*_SSM4SAR, "data.simulator.n_azimuth=512", "data.patch_length=128", "data.stride=128"],
    "mixmae_benv1": [*_BEN, *_MIXMIM_DECODER],
    "mixmae_benv1_ft": _BEN,
    "mixmae_benv1_paper": [*_BEN, "data.synthetic=true", "data.train_splits=[train]", *_MIXMIM_SIZE, *_MIXMIM_DECODER],
    "mixmae_benv1_ft_paper": [*_BEN, "data.synthetic=true", *_MIXMIM_SIZE],
    "mixmae_benv2": [*_BEN, *_MIXMIM_DECODER],
    "mixmae_benv2_ft": _BEN,
    "mixmae_benv2_paper": [*_BEN, "data.synthetic=true", "data.train_splits=[train]", *_MIXMIM_SIZE, *_MIXMIM_DECODER],
    "mixmae_benv2_ft_paper": [*_BEN, "data.synthetic=true", *_MIXMIM_SIZE],
    "mixmae_sen12flood_ft": _FLOOD,
    "mixmae_sen12flood_ft_paper": [*_FLOOD, "data.synthetic=true", *_MIXMIM_SIZE],
    "pdm_sar_lowres": _PDM,
    "pdm_sar_superres": [*_PDM, "data.low_res_size=8"],
    "pdm_insar_noise": _INSAR,
    "pdm_insar_phase": _INSAR,
    "pdm_feature_extractor": [*_FEATURES, "data.generator.counts={train:2,val:1,test:1}"],
    "pdm_feature_extractor_insar": [*_FEATURES, "data.generator.counts={train:12,val:4,test:4}"],
    "hsi_mstpp": _MSTPP,
    "hsi_mstpp_paper": [*_MSTPP, "data.synthetic=true", "data.stride=16", "data.pin_memory=false"],
    "hsi_cswin_gan": _GAN,
    "hsi_cswin_gan_paper": [*_GAN, "data.stride=16", "model.splits=[4,4,8]", "model.heads=[2,2,4]",
                            "model.depths=[1,1,1]", "system.discriminator.stages=2", "system.eval_tile=null"],
    "colorization_clip": [*_COLOR, *_CLIP],
    "colorization_clip_paper": [*_COLOR, *_CLIP],
    "colorization_vae": [*_COLOR, *_VAE],
    "colorization_vae_paper": [*_COLOR, *_VAE],
    "colorization_season_classifier": [*_COLOR, "model.widths=[4,8]", "model.feature_dim=8"],
    "colorization_ldm": [*_COLOR, *_UNET],
    "colorization_ldm_paper": [*_COLOR, *_UNET],
}

# LDM experiment → the experiments whose last.ckpt are its clip_checkpoint and vae_checkpoint
LDM_STAGES = {"colorization_ldm": ("colorization_clip", "colorization_vae"),
              "colorization_ldm_paper": ("colorization_clip_paper", "colorization_vae_paper")}

EXPERIMENT_DIR = Path(__file__).resolve().parents[1] / "conf" / "experiment"


def shipped_experiments() -> list[str]:
    return sorted(path.stem for path in EXPERIMENT_DIR.glob("*.yaml"))


def ordered(names: list[str]) -> list[str]:
    """`names` with every LDM after the stages it needs (which are added when missing)."""
    needed = [stage for name in names for stage in LDM_STAGES.get(name, ())]
    head = [name for name in dict.fromkeys([*needed, *names]) if name not in LDM_STAGES]
    return head + [name for name in names if name in LDM_STAGES]


def stage_overrides(name: str, run_dirs: dict[str, Path]) -> list[str]:
    """clip_checkpoint / vae_checkpoint of an LDM experiment from the run dirs of its stages."""
    if name not in LDM_STAGES:
        return []
    clip, vae = LDM_STAGES[name]
    return [f"clip_checkpoint={run_dirs[clip] / 'checkpoints' / 'last.ckpt'}",
            f"vae_checkpoint={run_dirs[vae] / 'checkpoints' / 'last.ckpt'}"]
