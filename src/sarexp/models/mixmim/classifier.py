"""Fine-tuning networks: a MixMIM encoder (no mixing) with a linear head on mean-pooled tokens.

`MixMIMClassifier` classifies one image (BigEarthNet); `MixMIMPairClassifier` classifies a pair of dates
(SEN12-FLOOD): each date is cut into encoder-sized tiles, the tile features of the two dates are compared
(|f₁ − f₂|, as the upstream SEN12-FLOOD model) and combined over tiles by `patch_op`.
"""

from collections.abc import Sequence
from typing import Literal

import torch
from timm.layers import trunc_normal_
from torch import nn

from sarexp.errors import ConfigError, DataError
from sarexp.models.mixmim.encoder import MixMIMEncoder
from sarexp.models.mixmim.optim_hints import mark_layer_decay, mark_no_weight_decay
from sarexp.models.mixmim.pretrained import load_pretrained_encoder


class MixMIMClassifier(nn.Module):
    """(B, C, S, S) → logits (B, num_classes). `pretrained`: checkpoint path for the encoder (see
    ``sarexp.models.mixmim.pretrained``); `layer_decay`: lr scale per layer (null: no decay)."""

    def __init__(
        self,
        num_classes: int,
        img_size: int = 128,
        patch_size: int = 4,
        in_chans: int = 2,
        embed_dim: int = 128,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (4, 8, 16, 32),
        window_sizes: Sequence[int] = (8, 8, 8, 4),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.1,
        layer_decay: float | None = 0.7,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        self.encoder = MixMIMEncoder(
            img_size, patch_size, in_chans, embed_dim, depths, num_heads, window_sizes, mlp_ratio, qkv_bias,
            drop_path_rate,
        )
        self.head = nn.Linear(self.encoder.num_features, num_classes)
        trunc_normal_(self.head.weight, std=2e-5)  # upstream re-initialises the head after loading
        nn.init.zeros_(self.head.bias)
        if pretrained:
            load_pretrained_encoder(self.encoder, pretrained)
        if layer_decay is None:
            mark_no_weight_decay(self)
        else:
            mark_layer_decay(self, "encoder.", list(depths), layer_decay)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Mean-pooled last-stage tokens (B, num_features)."""
        return self.encoder(images).mean(dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class MixMIMPairClassifier(MixMIMClassifier):
    """(B, 2 dates, C, S, S) → logits (B, num_classes); S a multiple of `img_size` (tiles of img_size)."""

    def __init__(
        self,
        num_classes: int,
        patch_op: Literal["avg", "max"] = "avg",
        img_size: int = 128,
        patch_size: int = 4,
        in_chans: int = 2,
        embed_dim: int = 128,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (4, 8, 16, 32),
        window_sizes: Sequence[int] = (8, 8, 8, 4),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.1,
        layer_decay: float | None = 0.7,
        pretrained: str | None = None,
    ) -> None:
        super().__init__(
            num_classes, img_size, patch_size, in_chans, embed_dim, depths, num_heads, window_sizes, mlp_ratio,
            qkv_bias, drop_path_rate, layer_decay, pretrained,
        )
        self.patch_op = patch_op

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        if pairs.ndim != 5 or pairs.shape[1] != 2:
            raise DataError(
                f"MixMIMPairClassifier expects images of shape (B, 2 dates, C, S, S), got {tuple(pairs.shape)}"
            )
        batch, dates, channels, height, width = pairs.shape
        tile = self.encoder.img_size
        if height % tile or width % tile:
            raise ConfigError(
                f"config key 'model.img_size' = {tile} must divide the input size {height}×{width} (data.image_size)"
            )
        tiles = pairs.unfold(3, tile, tile).unfold(4, tile, tile)  # B, T, C, nh, nw, tile, tile
        tiles = tiles.permute(0, 1, 3, 4, 2, 5, 6).reshape(-1, channels, tile, tile)
        features = self.features(tiles).view(batch, dates, -1, self.encoder.num_features)
        difference = (features[:, 0] - features[:, 1]).abs()
        pooled = difference.mean(dim=1) if self.patch_op == "avg" else difference.amax(dim=1)
        return self.head(pooled)
