"""The colorization autoencoder: diffusers' ``AutoencoderKL`` from YAML, its latent scaling, and its loader.

- :func:`build_vae`: 4 latent channels and ``len(block_out_channels) − 1`` halvings (4 blocks: 8× down, a
  3×256² image ↔ 4×32² latent as Stable Diffusion), or the weights of ``pretrained`` (see :func:`load_vae`).
- Both modalities go through the same VAE (the LDM stage encodes the optical target and the SAR condition):
  :func:`vae_input` replicates the one SAR channel to three.
- Latent scaling: diffusion runs on ``scaling_factor · z`` so the latents have about unit variance. The VAE
  stage estimates it from the data as 1 / std of the posterior samples of a few validation batches (Stable
  Diffusion's 0.18215 was obtained the same way) and stores it in the VAE config, which every checkpoint
  keeps beside the weights. :func:`encode_latents` / :func:`decode_latents` apply it.
- :func:`load_vae`: from a colorization_vae checkpoint (``torch.load(weights_only=True)``: the config is
  stored as a plain dict) or a local diffusers folder (``vae/`` or the folder itself, ``local_files_only``).
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL

from sarexp.errors import ConfigError
from sarexp.models.colorization.loading import first_line, load_weights, read_export


def build_vae(in_channels: int = 3, out_channels: int = 3, latent_channels: int = 4,
              block_out_channels: Sequence[int] = (128, 256, 512, 512), layers_per_block: int = 2,
              norm_num_groups: int = 32, sample_size: int = 256, scaling_factor: float = 1.0,
              pretrained: str | None = None) -> AutoencoderKL:
    """A fresh AutoencoderKL (defaults: Stable Diffusion's sizes), or the one at ``pretrained``."""
    if pretrained:
        return load_vae(pretrained, key="model.pretrained").train()
    widths = [int(width) for width in block_out_channels]
    if any(width % norm_num_groups for width in widths):
        raise ConfigError(f"model.block_out_channels {widths} must be multiples of model.norm_num_groups "
                          f"({norm_num_groups})")
    return AutoencoderKL(
        in_channels=in_channels, out_channels=out_channels, latent_channels=latent_channels,
        down_block_types=("DownEncoderBlock2D",) * len(widths), up_block_types=("UpDecoderBlock2D",) * len(widths),
        block_out_channels=tuple(widths), layers_per_block=layers_per_block, norm_num_groups=norm_num_groups,
        sample_size=sample_size, scaling_factor=scaling_factor,
    )


def vae_input(image: torch.Tensor) -> torch.Tensor:
    """(B, 1 or 3, H, W) in [−1, 1] → (B, 3, H, W): a SAR image's channel replicated to RGB."""
    return image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image


def encode_latents(vae: AutoencoderKL, image: torch.Tensor, sample: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``scaling_factor`` × a posterior sample (or its mode) of an optical or SAR batch: (B, 4, H/8, W/8)."""
    posterior = vae.encode(vae_input(image)).latent_dist
    latents = posterior.sample(generator) if sample else posterior.mode()
    return latents * vae.config.scaling_factor


def decode_latents(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """Images (B, 3, H, W) of scaled latents (the inverse of :func:`encode_latents`, unclipped)."""
    return vae.decode(latents / vae.config.scaling_factor).sample


def vae_export(vae: AutoencoderKL, prefix: str) -> dict[str, Any]:
    """What a checkpoint keeps to rebuild the VAE: its config (scaling factor included) as a plain dict."""
    return {"vae_config": json.loads(vae.to_json_string()), "state_dict_prefix": prefix}


def load_vae(path: str | Path, key: str = "vae_checkpoint") -> AutoencoderKL:
    """An AutoencoderKL (in eval mode) from a colorization_vae checkpoint or a local diffusers folder."""
    file = Path(path).expanduser()
    if file.is_dir():
        folder = file / "vae" if (file / "vae").is_dir() else file
        try:
            return AutoencoderKL.from_pretrained(folder, local_files_only=True).eval()
        except (OSError, ValueError) as error:
            raise ConfigError(f"{key}={path}: cannot load an AutoencoderKL from {folder} "
                              f"({first_line(error)})") from None
    if not file.is_file():
        raise ConfigError(f"{key}={path}: no such file or folder; pass a colorization_vae checkpoint "
                          f"(<run dir>/checkpoints/last.ckpt) or a diffusers folder with vae/")
    exported, state = read_export(file, key, "vae_config", "colorization_vae")
    vae = AutoencoderKL.from_config(exported["vae_config"])
    load_weights(vae, state, key, file)
    return vae.eval()
