"""Perceptual terms of a conditional GAN's generator loss; no pretrained VGG can be downloaded here.

- feature matching (the default): L1 between the discriminator's stage features of the real and the
  generated sample (Salimans et al. 2016 / pix2pixHD), real features detached;
- a user network: any `nn.Module` from config whose weights the user gives as a file
  (`perceptual_weights`, read with `torch.load(weights_only=True)` or safetensors); its output (a tensor or
  a list of tensors) is compared with L1. Its weights are frozen (kept in eval mode by the system).
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sarexp.io.checkpoint_io import load_weights_file
from sarexp.errors import ConfigError

Features = torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]


def feature_l1(real: Features, fake: Features) -> torch.Tensor:
    """Mean over layers of the mean absolute difference of features; real features are constants."""
    real_list = [real] if isinstance(real, torch.Tensor) else list(real)
    fake_list = [fake] if isinstance(fake, torch.Tensor) else list(fake)
    if len(real_list) != len(fake_list):
        raise ValueError(f"feature lists differ in length: {len(real_list)} and {len(fake_list)}")
    return torch.stack([F.l1_loss(f, r.detach()) for r, f in zip(real_list, fake_list, strict=True)]).mean()


def load_feature_network(network: nn.Module, weights: str | None) -> nn.Module:
    """Load `weights` into `network` and freeze it (eval mode, no gradients for its parameters)."""
    if not weights:
        raise ConfigError("system.perceptual_weights must name the weights file of system.perceptual_network "
                          "(no pretrained network can be downloaded here)")
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"system.perceptual_weights: {path} does not exist")
    state = load_weights_file(path, "system.perceptual_weights")
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ConfigError(f"system.perceptual_weights: {path} does not fit system.perceptual_network ({first})") from None
    network.requires_grad_(False)
    return network.eval()
