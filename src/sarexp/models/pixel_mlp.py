"""A pixel-wise network: an MLP applied to every pixel on its own (1×1 convolutions), no receptive field.

The control baseline of spectral recovery: trained with the same recipe as a spatial model (MST++), it can
learn any non-linear map from one pixel's RGB to its spectrum but sees no neighbourhood, so the gap between
it and a spatial model measures what spatial context adds. ``hidden_channels=[]`` is an affine map
RGB → bands (trained by gradient descent on the recipe's loss, unlike the closed-form least-squares fit of
:mod:`sarexp.models.linear_spectral`).
"""

from collections.abc import Sequence

import torch
from torch import nn


class PixelMLP(nn.Module):
    """in_channels → hidden_channels… (GELU after each) → out_channels, by 1×1 convolutions."""

    def __init__(self, in_channels: int = 3, out_channels: int = 31, hidden_channels: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        widths = [in_channels, *hidden_channels]
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(width_in, width_out, 1), nn.GELU()]
        layers.append(nn.Conv2d(widths[-1], out_channels, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
