"""Polarization-aware reconstruction weights of SAR-W-MixMAE (Caglayan et al., IGARSS 2025).

Backscatter in dB → linear power 10^(dB/10) → min-max per image and channel to x̃ ∈ [0, 1] →
w = exp(s·(1 − x̃)): dark (low-backscatter) pixels weigh up to e^s, the brightest pixel weighs 1.
"""

from typing import Literal

import torch
from torch import nn

Mode = Literal["per_channel", "shared_avg", "none"]


class BackscatterWeights(nn.Module):
    """(B, C, H, W) dB → weights of the same shape.

    `mode`: ``per_channel`` (VH weights for VH, VV for VV), ``shared_avg`` (one map from the mean of the
    linear channels, used for both), ``none`` (all ones). `scale` is s.
    """

    def __init__(self, mode: Mode = "per_channel", scale: float = 1.0) -> None:
        super().__init__()
        self.mode = mode
        self.scale = scale

    def forward(self, db: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return torch.ones_like(db)
        linear = torch.pow(10.0, db.float() / 10.0)
        if self.mode == "shared_avg":
            linear = linear.mean(dim=1, keepdim=True)
        low = linear.amin(dim=(-2, -1), keepdim=True)
        span = (linear.amax(dim=(-2, -1), keepdim=True) - low).clamp_min(torch.finfo(linear.dtype).tiny)
        weights = torch.exp(self.scale * (1.0 - (linear - low) / span))
        return weights.expand_as(db)
