"""The denoising UNet of improved-diffusion (Nichol & Dhariwal 2021) with the seed's knobs, including its
super-resolution variant (`super_resolution=true`). A plain network `net(x_t, t, **conditioning)`: it knows
nothing about noise schedules; with `learn_sigma` it returns twice the input channels (ε and the variance
interpolation v).

Conditioning inputs are declared in `conditioning` (batch keys), so a system can pass them from the batch
without knowing the network: ``("label",)`` for class-conditional models, ``("low_res",)`` for super-resolution.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sarexp.errors import ConfigError


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps: [cos(t f_k), sin(t f_k)], f_k = P^(−k/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups as in the seed, fewer when the channel count is small (CPU-sized models)."""
    return nn.GroupNorm(math.gcd(32, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm–SiLU–conv twice, with the timestep embedding as a scale and shift of the second norm
    (use_scale_shift_norm, the seed's default) or added to the features."""

    def __init__(
        self, channels: int, emb_channels: int, out_channels: int, dropout: float, use_scale_shift_norm: bool
    ) -> None:
        super().__init__()
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(group_norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels)
        )
        self.out_norm = group_norm(out_channels)
        self.out_layers = nn.Sequential(
            nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out_channels, out_channels, 3, padding=1)
        )
        nn.init.zeros_(self.out_layers[-1].weight)  # each block starts as the identity
        nn.init.zeros_(self.out_layers[-1].bias)
        self.skip = nn.Identity() if channels == out_channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        emb_out = self.emb_layers(emb)[:, :, None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_norm(h) * (1 + scale) + shift
        else:
            h = self.out_norm(h + emb_out)
        return self.skip(x) + self.out_layers(h)


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, residual."""

    def __init__(self, channels: int, num_heads: int) -> None:
        super().__init__()
        if channels % num_heads:
            raise ConfigError(f"attention over {channels} channels needs num_heads dividing it, got {num_heads}")
        self.num_heads = num_heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        qkv = self.qkv(self.norm(x).reshape(batch, channels, -1))
        q, k, v = qkv.reshape(batch, 3, self.num_heads, channels // self.num_heads, -1).transpose(-1, -2).unbind(1)
        attended = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, C/heads)
        out = attended.transpose(-1, -2).reshape(batch, channels, -1)
        return x + self.proj(out).reshape(batch, channels, height, width)


class Downsample(nn.Module):
    def __init__(self, channels: int, use_conv: bool) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1) if use_conv else nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int, use_conv: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1) if use_conv else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class _Stage(nn.Module):
    """A ResBlock optionally followed by attention (one entry of the encoder or decoder)."""

    def __init__(self, res: ResBlock, attention: AttentionBlock | None) -> None:
        super().__init__()
        self.res = res
        self.attention = attention if attention is not None else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return self.attention(self.res(x, emb))


class UNet(nn.Module):
    """Encoder–decoder with skip connections, timestep (and class) embedding, attention at chosen resolutions.

    in_channels: image channels (seed: num_input_channels); model_channels: base width (num_model_channels);
    channel_mult: width multiplier per level (one level per entry, each but the last halving the resolution);
    attention_resolutions: feature-map sizes in pixels that get self-attention (the seed's "16,8" at 64 px);
    num_classes: class-conditional when > 0 (class_cond); learn_sigma doubles the output channels;
    super_resolution: conditioned on a low-resolution image, upsampled (bilinear) to the output size and
    concatenated to x_t as extra input channels (the seed's SuperResModel); num_heads_upsample: heads of the
    decoder's attention (−1: num_heads, the seed's default). Weights from elsewhere (`model.pretrained`) are
    loaded by :func:`sarexp.models.unet_pretrained.build_unet`, which conf/model/unet.yaml calls.
    """

    conditioning: tuple[str, ...] = ()

    def __init__(
        self,
        in_channels: int = 1,
        model_channels: int = 64,
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (16, 8),
        image_size: int = 64,
        channel_mult: Sequence[int] = (1, 2, 3, 4),
        dropout: float = 0.0,
        num_classes: int = 0,
        num_heads: int = 4,
        learn_sigma: bool = False,
        use_scale_shift_norm: bool = True,
        conv_resample: bool = True,
        super_resolution: bool = False,
        num_heads_upsample: int = -1,
    ) -> None:
        super().__init__()
        if image_size % 2 ** (len(channel_mult) - 1):
            raise ConfigError(
                f"model.image_size={image_size} must be divisible by 2^(levels−1) = {2 ** (len(channel_mult) - 1)}"
            )
        self.in_channels = in_channels
        self.image_size = image_size
        self.num_classes = num_classes  # 0: unconditional
        self.model_channels = model_channels
        self.super_resolution = super_resolution
        self.conditioning = ("label",) * (num_classes > 0) + ("low_res",) * super_resolution
        emb_channels = 4 * model_channels
        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb_channels), nn.SiLU(), nn.Linear(emb_channels, emb_channels)
        )
        self.label_embed = nn.Embedding(num_classes, emb_channels) if num_classes > 0 else None

        heads_up = num_heads if num_heads_upsample == -1 else num_heads_upsample

        def stage(channels: int, out: int, size: int, heads: int = num_heads) -> _Stage:
            res = ResBlock(channels, emb_channels, out, dropout, use_scale_shift_norm)
            return _Stage(res, AttentionBlock(out, heads) if size in attention_resolutions else None)

        # super-resolution: the upsampled low-resolution image enters as extra input channels
        self.input_conv = nn.Conv2d(in_channels * (2 if super_resolution else 1), model_channels, 3, padding=1)
        self.down = nn.ModuleList()
        skip_channels = [model_channels]
        channels, size = model_channels, image_size
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(stage(channels, mult * model_channels, size))
                channels = mult * model_channels
                skip_channels.append(channels)
            if level != len(channel_mult) - 1:
                self.down.append(Downsample(channels, conv_resample))
                skip_channels.append(channels)
                size //= 2
        self.middle = nn.ModuleList(
            [
                ResBlock(channels, emb_channels, channels, dropout, use_scale_shift_norm),
                AttentionBlock(channels, num_heads),
                ResBlock(channels, emb_channels, channels, dropout, use_scale_shift_norm),
            ]
        )
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for block in range(num_res_blocks + 1):
                self.up.append(stage(channels + skip_channels.pop(), mult * model_channels, size, heads_up))
                channels = mult * model_channels
                if level and block == num_res_blocks:
                    self.up.append(Upsample(channels, conv_resample))
                    size *= 2
        out_channels = 2 * in_channels if learn_sigma else in_channels
        self.out = nn.Sequential(group_norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def embed(self, t: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.model_channels))
        if self.label_embed is not None:
            if label is None:
                raise ValueError("this UNet is class-conditional (model.num_classes > 0): pass label")
            emb = emb + self.label_embed(label)
        return emb

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor | None = None, low_res: torch.Tensor | None = None
    ) -> torch.Tensor:
        emb = self.embed(t, label)
        if self.super_resolution:
            if low_res is None:
                raise ValueError("a super-resolution UNet needs low_res, the low-resolution image to upsample")
            upsampled = F.interpolate(low_res, size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([x, upsampled], dim=1)
        h = self.input_conv(x)
        skips = [h]
        for module in self.down:
            h = module(h, emb) if isinstance(module, _Stage) else module(h)
            skips.append(h)
        h = self.middle[2](self.middle[1](self.middle[0](h, emb)), emb)
        for module in self.up:
            if isinstance(module, _Stage):
                h = module(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = module(h)
        return self.out(h)
