"""Swin encoder without shifted windows, whose window attention can keep two mixed images apart.

Parameter names follow the upstream MixMIM / SAR-W-MixMAE models (``patch_embed``, ``layers.i.blocks.j``,
``layers.i.downsample``, ``norm``, ``absolute_pos_embed``), so their state dicts load without renaming.
Built from timm's PatchEmbed, WindowAttention, Mlp, DropPath and PatchMerging; what timm lacks is a
block that takes a per-batch attention mask and the mixing of tokens at the input.
"""

from collections.abc import Sequence

import torch
from timm.layers import DropPath, Mlp, PatchEmbed
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed
from timm.models.swin_transformer import (
    PatchMerging,
    WindowAttention,
    window_partition,
    window_reverse,
)
from torch import nn

from sarexp.errors import ConfigError
from sarexp.models.mixmim.mixing import upsample_mask, window_group_mask


class MixBlock(nn.Module):
    """Pre-norm window attention + MLP on a (B, H, W, C) token grid; `window_mask` keeps images apart."""

    def __init__(
        self, dim: int, num_heads: int, window: int, mlp_ratio: float, qkv_bias: bool, drop_path: float
    ) -> None:
        super().__init__()
        self.window = window
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads=num_heads, window_size=window, qkv_bias=qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, window_mask: torch.Tensor | None = None) -> torch.Tensor:
        _, height, width, channels = x.shape
        size = (self.window, self.window)
        windows = window_partition(self.norm1(x), size).view(-1, self.window * self.window, channels)
        attended = self.attn(windows, mask=window_mask).view(-1, self.window, self.window, channels)
        x = x + self.drop_path(window_reverse(attended, size, height, width))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class Stage(nn.Module):
    """`depth` blocks at one resolution, then (except the last stage) 2×2 patch merging."""

    def __init__(
        self, dim: int, depth: int, num_heads: int, window: int, mlp_ratio: float, qkv_bias: bool,
        drop_paths: Sequence[float], downsample: bool,
    ) -> None:
        super().__init__()
        self.window = window
        self.blocks = nn.ModuleList(
            MixBlock(dim, num_heads, window, mlp_ratio, qkv_bias, drop_paths[index]) for index in range(depth)
        )
        self.downsample = PatchMerging(dim, 2 * dim) if downsample else None

    def forward(self, x: torch.Tensor, mix_mask: torch.Tensor | None = None) -> torch.Tensor:
        window_mask = None
        if mix_mask is not None:
            window_mask = window_group_mask(upsample_mask(mix_mask, (x.shape[1], x.shape[2])), self.window).to(x.dtype)
        for block in self.blocks:
            x = block(x, window_mask)
        return x if self.downsample is None else self.downsample(x)


class MixMIMEncoder(nn.Module):
    """Patch embedding + fixed 2-D sin-cos positions + Swin stages + final norm → tokens (B, L, C).

    ``window_sizes`` are fitted to the input: a window larger than its stage's grid shrinks to the grid
    (the SAR configuration, 128×128 input with patch 4, uses [8, 8, 8, 4] on grids 32, 16, 8, 4).
    """

    def __init__(
        self,
        img_size: int = 128,
        patch_size: int = 4,
        in_chans: int = 2,
        embed_dim: int = 128,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (4, 8, 16, 32),
        window_sizes: Sequence[int] = (8, 8, 8, 4),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if not len(depths) == len(num_heads) == len(window_sizes):
            raise ConfigError(
                f"config keys 'model.depths', 'model.num_heads', 'model.window_sizes' need one entry per stage; "
                f"got {len(depths)}, {len(num_heads)}, {len(window_sizes)}"
            )
        self.img_size = img_size
        self.in_chans = in_chans
        self.depths = list(depths)
        self.encoder_stride = patch_size * 2 ** (len(depths) - 1)
        if img_size % self.encoder_stride:
            raise ConfigError(
                f"config key 'model.img_size' = {img_size} must be a multiple of patch_size·2^(stages−1) = "
                f"{self.encoder_stride}"
            )
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.patch_embed = PatchEmbed(
            img_size, patch_size, in_chans, embed_dim, norm_layer=nn.LayerNorm, output_fmt="NHWC"
        )
        grid = img_size // patch_size
        self.grid = (grid, grid)
        self.register_buffer("absolute_pos_embed", build_sincos2d_pos_embed([grid, grid], embed_dim).unsqueeze(0))
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.ModuleList()
        for index, (depth, heads, window) in enumerate(zip(depths, num_heads, window_sizes)):
            size = grid // 2**index
            window = min(window, size)
            if size % window:
                raise ConfigError(
                    f"config key 'model.window_sizes' = {list(window_sizes)}: window {window} does not tile "
                    f"stage {index}'s {size}×{size} grid; pick a divisor of {size}"
                )
            start = sum(depths[:index])
            self.layers.append(
                Stage(embed_dim * 2**index, depth, heads, window, mlp_ratio, qkv_bias, rates[start : start + depth],
                      downsample=index < len(depths) - 1)
            )
        self.norm = nn.LayerNorm(self.num_features)
        self.apply(_init_weights)

    @property
    def out_grid(self) -> tuple[int, int]:
        """Token grid of the last stage, on which the mixing mask is drawn."""
        return self.img_size // self.encoder_stride, self.img_size // self.encoder_stride

    def forward(self, images: torch.Tensor, mix_mask: torch.Tensor | None = None, isolate: bool = True) -> torch.Tensor:
        """Tokens (B, L, C) of the last stage.

        With a boolean `mix_mask` on :attr:`out_grid`, image b takes the tokens of image B−1−b where the mask
        is True; `isolate` (the MixMIM attention mask) stops tokens of different images attending each other.
        """
        x = self.patch_embed(images)
        if mix_mask is not None:
            x = torch.where(upsample_mask(mix_mask, self.grid)[None, :, :, None], x.flip(0), x)
        x = x + self.absolute_pos_embed.view(1, *self.grid, -1)
        for stage in self.layers:
            x = stage(x, mix_mask if isolate else None)
        return self.norm(x.flatten(1, 2))


def _init_weights(module: nn.Module) -> None:
    """Xavier-uniform linear layers with zero bias and unit LayerNorms, as the upstream MixMIM models."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
