"""The latent-diffusion denoiser: diffusers' UNet2DConditionModel, configured from YAML, or a local
diffusers-format folder (`pretrained`, e.g. a Stable Diffusion copy's `unet/`) whose input convolution is
widened to the concatenated conditioning latent (new input channels start at zero, as InstructPix2Pix does, so
the pretrained network's behaviour is unchanged at the start of fine-tuning)."""

from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DConditionModel

from sarexp.errors import ConfigError


def ldm_unet(pretrained: str | None = None, **config: Any) -> UNet2DConditionModel:
    """A UNet2DConditionModel from its constructor arguments, or from `pretrained` (a folder with
    config.json and weights, or its parent holding `unet/`), widened to `in_channels` when that is larger."""
    if pretrained is None:
        return UNet2DConditionModel(**config)
    folder = Path(pretrained)
    if (folder / "unet").is_dir():
        folder = folder / "unet"
    if not (folder / "config.json").is_file():
        raise ConfigError(f"model.pretrained={pretrained} is not a diffusers UNet folder (no config.json in it or unet/)")
    unet = UNet2DConditionModel.from_pretrained(folder, local_files_only=True)
    wanted = int(config.get("in_channels", unet.config.in_channels))
    if wanted > unet.config.in_channels:
        _widen_input(unet, wanted)
    return unet


def _widen_input(unet: UNet2DConditionModel, channels: int) -> None:
    old = unet.conv_in
    new = torch.nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=channels)
