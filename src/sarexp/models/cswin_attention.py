"""Attention layers of the noise-robust CSWin generator, on channel-first maps (B, C, H, W).

- `CSWinAttention`: cross-shaped window self-attention (Dong et al. 2022, microsoft/CSWin-Transformer): one
  qkv projection; half the channels and heads attend within vertical stripes (full height × `split` columns),
  the other half within horizontal stripes (`split` rows × full width); a locally-enhanced positional
  encoding (LePE: depthwise 3×3 convolution of V inside each stripe) is added to attention·V; the halves are
  concatenated and projected. Maps not divisible by the stripe width are reflect-padded and cropped back; a
  split at least the map's size is clamped to it, so the stripe is the whole map (full attention).
- `SpectralAttention`: spectral-wise (channel) self-attention as in MST++: per head a (d × d) attention
  between channels, q and k L2-normalised along the pixels, a learned per-head temperature.
"""

import torch
import torch.nn.functional as F
from torch import nn

from sarexp.errors import ConfigError


def stripe_partition(x: torch.Tensor, stripe_h: int, stripe_w: int) -> torch.Tensor:
    """(B, C, H, W) with H, W divisible by the stripe → (B·nH·nW, stripe_h·stripe_w, C) windows."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // stripe_h, stripe_h, w // stripe_w, stripe_w)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(-1, stripe_h * stripe_w, c)


def stripe_merge(windows: torch.Tensor, stripe_h: int, stripe_w: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `stripe_partition`: (B·nH·nW, stripe_h·stripe_w, C) → (B, C, H, W)."""
    c = windows.shape[-1]
    x = windows.reshape(-1, h // stripe_h, w // stripe_w, stripe_h, stripe_w, c)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(-1, c, h, w)


def pad_to_multiple(x: torch.Tensor, multiple_h: int, multiple_w: int) -> torch.Tensor:
    """Reflect-pad the bottom/right so H and W are multiples (the pad is always smaller than the map)."""
    pad_h = (-x.shape[2]) % multiple_h
    pad_w = (-x.shape[3]) % multiple_w
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < x.shape[2] and pad_w < x.shape[3] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


class StripeAttention(nn.Module):
    """Multi-head attention inside stripes of one orientation, with LePE on V."""

    def __init__(self, dim: int, heads: int, split: int, vertical: bool) -> None:
        super().__init__()
        self.heads = heads
        self.split = split
        self.vertical = vertical
        self.scale = (dim // heads) ** -0.5
        self.lepe = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        _, c, h, w = q.shape
        if self.vertical:
            stripe_h, stripe_w = h, min(self.split, w)
        else:
            stripe_h, stripe_w = min(self.split, h), w
        q, k, v = (pad_to_multiple(t, stripe_h, stripe_w) for t in (q, k, v))
        hp, wp = q.shape[2:]
        lepe = self.lepe(v.reshape(-1, c, hp // stripe_h, stripe_h, wp // stripe_w, stripe_w)
                         .permute(0, 2, 4, 1, 3, 5).reshape(-1, c, stripe_h, stripe_w))
        lepe = lepe.flatten(2).transpose(1, 2)  # (windows, tokens, C)
        q, k, v = (stripe_partition(t, stripe_h, stripe_w) for t in (q, k, v))
        n, tokens, _ = q.shape
        q, k, v = (t.view(n, tokens, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        attn = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(n, tokens, c) + lepe
        return stripe_merge(out, stripe_h, stripe_w, hp, wp)[:, :, :h, :w]


class CSWinAttention(nn.Module):
    """Cross-shaped window attention: vertical stripes on the first half of the channels and heads,
    horizontal stripes on the second half."""

    def __init__(self, dim: int, heads: int, split: int, qkv_bias: bool = False) -> None:
        super().__init__()
        if heads < 2 or heads % 2 or dim % heads:
            raise ConfigError(f"model CSWin heads must be even (≥ 2) and divide the width {dim}, got {heads}")
        if split < 1:
            raise ConfigError(f"model CSWin split sizes must be ≥ 1, got {split}")
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=qkv_bias)
        self.branches = nn.ModuleList(
            [StripeAttention(dim // 2, heads // 2, split, vertical=True),
             StripeAttention(dim // 2, heads // 2, split, vertical=False)])
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=1)
        half = x.shape[1] // 2
        outs = [branch(q[:, s], k[:, s], v[:, s])
                for branch, s in zip(self.branches, (slice(0, half), slice(half, None)), strict=True)]
        return self.proj(torch.cat(outs, dim=1))


class SpectralAttention(nn.Module):
    """Channel (spectral-wise) multi-head self-attention: tokens are channels, so the cost is linear in
    the number of pixels and the attention sees whole-image statistics of every band."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"model spectral heads ({heads}) must divide the width {dim}")
        self.heads = heads
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=False)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in self.qkv(x).chunk(3, dim=1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.temperature, dim=-1)
        return self.proj((attn @ v).reshape(b, c, h, w))
