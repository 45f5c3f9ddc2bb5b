"""Noise-robust CSWin generator (the seed's `NoiseRobustCSWinGenerator`): RGB (B, 3, H, W) → spectra
(B, out_channels, H, W).

A U-Net: input embedding → two encoder stages (each dual-attention blocks, then a stride-2 convolution that
doubles the width) → a transformer bottleneck → a symmetric decoder (2×2 transposed convolution, the
skip connection through a noise-aware gate, 1×1 fusion, blocks) → a 3×3 output convolution plus a linear
1×1 RGB → spectra path (the model learns a residual over a linear spectral fit).

Every block is dual attention: spectral (channel) attention, then CSWin cross-shaped-window spatial attention,
then a feed-forward layer, each pre-normalised by an adaptive GroupNorm whose scale and shift come from a
noise embedding. The embedding is estimated from the input itself (log mean absolute high-pass residual of
each RGB channel → MLP), so the same weights adapt to clean and noisy inputs without a given noise level.
Inputs are reflect-padded to a multiple of 4 (two downsamplings) and cropped back; the stripe attention pads
or clamps its windows, so any map size works.
"""

import torch
import torch.nn.functional as F
from torch import nn

from sarexp.errors import ConfigError
from sarexp.models.cswin_attention import CSWinAttention, SpectralAttention, pad_to_multiple

ACTIVATIONS = ("none", "sigmoid", "tanh", "delayed_sigmoid")


class NoiseEstimator(nn.Module):
    """Per-image noise embedding from the input's high-frequency residual (x − 3×3 box blur)."""

    def __init__(self, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return self.mlp(torch.log(residual.abs().mean(dim=(2, 3)) + 1e-4))


class AdaptiveGroupNorm(nn.Module):
    """GroupNorm without its own affine, then (1 + γ(e))·x + β(e) from the noise embedding e; γ, β start at 0."""

    def __init__(self, dim: int, embed_dim: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, dim, affine=False)
        self.affine = nn.Linear(embed_dim, 2 * dim)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(embedding)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * (1.0 + gamma) + beta


class NoiseGate(nn.Module):
    """x · σ(conv(x) + W·e): lets the network damp skip features where the estimated noise dominates."""

    def __init__(self, dim: int, embed_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.embed = nn.Linear(embed_dim, dim)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x) + self.embed(embedding)[:, :, None, None])


class DualAttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int, split: int, embed_dim: int, groups: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm_spectral = AdaptiveGroupNorm(dim, embed_dim, groups)
        self.spectral = SpectralAttention(dim, heads)
        self.norm_spatial = AdaptiveGroupNorm(dim, embed_dim, groups)
        self.spatial = CSWinAttention(dim, heads, split)
        self.norm_ffn = AdaptiveGroupNorm(dim, embed_dim, groups)
        self.ffn = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.GELU(),
                                 nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden), nn.GELU(),
                                 nn.Conv2d(hidden, dim, 1))

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        x = x + self.spectral(self.norm_spectral(x, embedding))
        x = x + self.spatial(self.norm_spatial(x, embedding))
        return x + self.ffn(self.norm_ffn(x, embedding))


class Stage(nn.Module):
    def __init__(self, depth: int, **block: int | float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([DualAttentionBlock(**block) for _ in range(depth)])  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, embedding)
        return x


class NoiseRobustCSWinGenerator(nn.Module):
    """See the module docstring. `depths`, `heads` and `splits` list the two encoder stages and the bottleneck
    (the decoder mirrors the encoder); widths are dim, 2·dim, 4·dim.

    output_activation: none | sigmoid | tanh | delayed_sigmoid. delayed_sigmoid outputs the raw map
    clamped to [0, 1] (straight-through: the clamp passes gradients) for the first `activation_delay`
    training forward passes, then blends linearly into a sigmoid over the next `activation_delay` passes; the
    pass counter is a buffer, so it is saved and resumed with the weights.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 31, dim: int = 32,
                 depths: tuple[int, int, int] = (1, 1, 2), heads: tuple[int, int, int] = (2, 4, 8),
                 splits: tuple[int, int, int] = (4, 4, 8), mlp_ratio: float = 2.0, norm_groups: int = 8,
                 noise_embed_dim: int = 32, output_activation: str = "none", activation_delay: int = 1000) -> None:
        super().__init__()
        if output_activation not in ACTIVATIONS:
            raise ConfigError(f"model.output_activation must be one of {', '.join(ACTIVATIONS)}, "
                              f"got {output_activation!r}")
        if not len(depths) == len(heads) == len(splits) == 3:
            raise ConfigError("model.depths, model.heads and model.splits need 3 entries each "
                              "(encoder stage 1, encoder stage 2, bottleneck)")
        if dim % norm_groups:
            raise ConfigError(f"model.norm_groups ({norm_groups}) must divide model.dim ({dim})")
        self.output_activation = output_activation
        self.activation_delay = activation_delay
        self.register_buffer("forward_passes", torch.zeros((), dtype=torch.long))
        widths = (dim, 2 * dim, 4 * dim)

        def stage(i: int, depth: int) -> Stage:
            return Stage(depth, dim=widths[i], heads=heads[i], split=splits[i], embed_dim=noise_embed_dim,
                         groups=norm_groups, mlp_ratio=mlp_ratio)

        self.noise = NoiseEstimator(in_channels, noise_embed_dim)
        self.embed = nn.Conv2d(in_channels, dim, 3, padding=1)
        self.input_gate = NoiseGate(dim, noise_embed_dim)
        self.encoder1, self.encoder2 = stage(0, depths[0]), stage(1, depths[1])
        self.down1 = nn.Conv2d(widths[0], widths[1], 4, stride=2, padding=1)
        self.down2 = nn.Conv2d(widths[1], widths[2], 4, stride=2, padding=1)
        self.bottleneck = stage(2, depths[2])
        self.up2 = nn.ConvTranspose2d(widths[2], widths[1], 2, stride=2)
        self.gate2 = NoiseGate(widths[1], noise_embed_dim)
        self.fuse2 = nn.Conv2d(2 * widths[1], widths[1], 1)
        self.decoder2 = stage(1, depths[1])
        self.up1 = nn.ConvTranspose2d(widths[1], widths[0], 2, stride=2)
        self.gate1 = NoiseGate(widths[0], noise_embed_dim)
        self.fuse1 = nn.Conv2d(2 * widths[0], widths[0], 1)
        self.decoder1 = stage(0, depths[0])
        self.out = nn.Conv2d(dim, out_channels, 3, padding=1)
        self.linear_path = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        h, w = rgb.shape[2:]
        x = pad_to_multiple(rgb, 4, 4)
        embedding = self.noise(x)
        skip1 = self.encoder1(self.input_gate(self.embed(x), embedding), embedding)
        skip2 = self.encoder2(self.down1(skip1), embedding)
        y = self.bottleneck(self.down2(skip2), embedding)
        y = self.decoder2(self.fuse2(torch.cat([self.up2(y), self.gate2(skip2, embedding)], 1)), embedding)
        y = self.decoder1(self.fuse1(torch.cat([self.up1(y), self.gate1(skip1, embedding)], 1)), embedding)
        y = (self.out(y) + self.linear_path(x))[:, :, :h, :w]
        if self.training:
            self.forward_passes += 1
        return self.activate(y)

    def activate(self, y: torch.Tensor) -> torch.Tensor:
        if self.output_activation == "sigmoid":
            return torch.sigmoid(y)
        if self.output_activation == "tanh":
            return torch.tanh(y)
        if self.output_activation == "none":
            return y
        clamped = y + (y.clamp(0.0, 1.0) - y).detach()
        delay = max(self.activation_delay, 1)
        blend = min(max((int(self.forward_passes) - self.activation_delay) / delay, 0.0), 1.0)
        if blend == 0.0:
            return clamped
        return (1.0 - blend) * clamped + blend * torch.sigmoid(y)
