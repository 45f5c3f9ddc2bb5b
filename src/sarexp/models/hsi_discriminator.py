"""Spectral-normalised transformer discriminator on the condition ⊕ sample (RGB ⊕ HSI: 3 + 31 channels).

Every convolution is spectrally normalised (σ_max of its reshaped weight ≈ 1, Miyato et al. 2018), so D is
close to 1-Lipschitz per layer: the Sinkhorn-GAN's discriminator maximises a divergence of its features, and
without a bound it could do so by scaling them up. Stages downsample by 2 (4×4 stride-2 convolution, GELU)
and apply a transformer block: spectral (channel) self-attention with a learned temperature and NaN-safe
logits (non-finite values zeroed, logits clamped), then a GELU feed-forward layer. The output is a spatial
feature map (B, out_channels, H / 2^stages, W / 2^stages), no global pooling; `forward(..., features=True)`
also returns every stage's output, for feature matching.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from sarexp.errors import ConfigError

LOGIT_LIMIT = 30.0


def sn_conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Module:
    padding = (kernel - stride + 1) // 2 if stride > 1 else kernel // 2
    return spectral_norm(nn.Conv2d(in_channels, out_channels, kernel, stride, padding, groups=groups))


class SpectralSelfAttention(nn.Module):
    """Channel attention: softmax(q̂ k̂ᵀ / τ) over channels per head, q̂, k̂ L2-normalised along the pixels;
    τ = softplus(ρ) + 0.01 is learned per head and kept positive."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"discriminator heads ({heads}) must divide its width {dim}")
        self.heads = heads
        self.qkv = sn_conv(dim, 3 * dim, 1)
        self.rho = nn.Parameter(torch.zeros(heads, 1, 1))
        self.proj = sn_conv(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in self.qkv(x).chunk(3, dim=1))
        q, k = F.normalize(q, dim=-1, eps=1e-6), F.normalize(k, dim=-1, eps=1e-6)
        logits = (q @ k.transpose(-2, -1)) / (F.softplus(self.rho) + 0.01)
        logits = torch.nan_to_num(logits, nan=0.0, posinf=LOGIT_LIMIT, neginf=-LOGIT_LIMIT)
        attn = torch.softmax(logits.clamp(-LOGIT_LIMIT, LOGIT_LIMIT), dim=-1)
        return self.proj((attn @ v).reshape(b, c, h, w))


class DiscriminatorStage(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(out_channels * mlp_ratio)
        self.down = sn_conv(in_channels, out_channels, 4, stride=2)
        self.attention = SpectralSelfAttention(out_channels, heads)
        self.ffn = nn.Sequential(sn_conv(out_channels, hidden, 1), nn.GELU(), sn_conv(hidden, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.down(x))
        x = x + self.attention(x)
        return x + self.ffn(x)


class SpectralNormTransformerDiscriminator(nn.Module):
    """in_channels = condition + sample channels (34 for RGB ⊕ 31 bands); widths double per stage up to
    `max_dim`. Maps smaller than 2^stages are reflect/replicate-padded so a stage never sees 0 pixels."""

    def __init__(self, in_channels: int = 34, dim: int = 32, stages: int = 3, heads: int = 4,
                 max_dim: int = 256, mlp_ratio: float = 2.0, out_channels: int = 16) -> None:
        super().__init__()
        if stages < 1:
            raise ConfigError(f"discriminator stages must be ≥ 1, got {stages}")
        self.stages_count = stages
        self.stem = sn_conv(in_channels, dim, 3)
        widths = [min(dim * 2 ** i, max_dim) for i in range(stages + 1)]
        self.stages = nn.ModuleList(
            [DiscriminatorStage(widths[i], widths[i + 1], heads, mlp_ratio) for i in range(stages)])
        self.head = sn_conv(widths[-1], out_channels, 3)

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        minimum = 2 ** self.stages_count
        if x.shape[2] < minimum or x.shape[3] < minimum:
            pad_h, pad_w = max(minimum - x.shape[2], 0), max(minimum - x.shape[3], 0)
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x = F.gelu(self.stem(x))
        stage_outputs = []
        for stage in self.stages:
            x = stage(x)
            stage_outputs.append(x)
        out = self.head(x)
        return (out, stage_outputs) if features else out
