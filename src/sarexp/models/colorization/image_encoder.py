"""The image side of the contrastive stage: a small residual CNN from an optical image to an embedding.

The seed names no image encoder; this one only has to tell colours and textures apart (region and season),
so a few strided residual stages with GroupNorm and a global average pool suffice. Widths are set in YAML.
"""

from collections.abc import Sequence

import torch
from torch import nn

from sarexp.errors import ConfigError


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResidualDown(nn.Module):
    """Halve the resolution (strided 3×3 conv), then a pre-activation residual 3×3 block."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)
        self.block = nn.Sequential(_norm(out_channels), nn.SiLU(), nn.Conv2d(out_channels, out_channels, 3, padding=1),
                                   _norm(out_channels), nn.SiLU(), nn.Conv2d(out_channels, out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return x + self.block(x)


class ImageEncoder(nn.Module):
    """(B, in_channels, H, W) in [−1, 1] → (B, embed_dim); one ResidualDown per entry of ``channels``."""

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (32, 64, 128), embed_dim: int = 128) -> None:
        super().__init__()
        if not channels or any(width < 1 for width in channels):
            raise ConfigError(f"model.image.channels must list positive widths, got {list(channels)}")
        widths = [int(width) for width in channels]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.stages = nn.Sequential(*(ResidualDown(a, b) for a, b in zip([widths[0], *widths[:-1]], widths)))
        self.head = nn.Sequential(_norm(widths[-1]), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(widths[-1], embed_dim))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(image)))
