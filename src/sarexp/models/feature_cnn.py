"""A small CNN classifier whose penultimate layer is the feature space of FID and precision/recall.

FID needs a network that has learnt what matters in the images. Inception trained on ImageNet is the
usual choice, but the seed found it a poor judge of SAR and fine-tuned it on TenGeoP-SARwv vignettes;
without downloadable weights we train this network on the same data as the generative model instead
(``experiment=pdm_feature_extractor``). ``features`` returns the global-average-pooled activations of
the last convolution stage after a linear projection and ReLU: (B, feature_dim).
"""

from collections.abc import Sequence

import torch
from torch import nn

from sarexp.errors import ConfigError


def _stage(inputs: int, outputs: int, dropout: float) -> nn.Sequential:
    """Two 3×3 convolutions with batch norm and ReLU, then 2× max pooling."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Dropout2d(dropout),
    )


class FeatureCNN(nn.Module):
    """(B, C, H, W) images in [−1, 1] → (B, num_classes) logits; ``features`` gives (B, feature_dim)."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 6,
        widths: Sequence[int] = (32, 64, 128),
        feature_dim: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if not widths:
            raise ConfigError("widths must name at least one stage")
        channels = [in_channels, *widths]
        self.stages = nn.Sequential(*(_stage(a, b, dropout) for a, b in zip(channels[:-1], channels[1:])))
        self.projection = nn.Sequential(nn.Linear(widths[-1], feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, num_classes)
        self.feature_dim = feature_dim

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.projection(self.stages(images).mean(dim=(-2, -1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
