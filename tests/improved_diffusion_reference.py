"""A small, independent re-implementation of improved-diffusion's UNetModel / SuperResModel (Nichol & Dhariwal
2021, as used by the seed PDM_SAR_InSAR_generation) with its parameter names and its attention layout (qkv rows
grouped per head, attention at downsampling rates `ds`, time steps optionally rescaled to 1000/T by the
caller). Written for the tests from the architecture's description: the reference the weight mapping of
``sarexp.models.unet_pretrained`` is checked against."""

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Seq(nn.Sequential):
    """TimestepEmbedSequential: passes the embedding to the residual blocks."""

    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, RefResBlock) else layer(x)
        return x


class RefResBlock(nn.Module):
    def __init__(self, channels, emb_channels, out_channels):
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(32, channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels))
        self.out_layers = nn.Sequential(nn.GroupNorm(32, out_channels), nn.SiLU(), nn.Dropout(0.0),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x, emb):
        h = self.in_layers(x)
        scale, shift = self.emb_layers(emb)[..., None, None].chunk(2, dim=1)  # use_scale_shift_norm=True
        h = self.out_layers[0](h) * (1 + scale) + shift
        return self.skip_connection(x) + self.out_layers[1:](h)


class RefAttention(nn.Module):
    def __init__(self, channels, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(32, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x)).reshape(b * self.num_heads, -1, x.shape[-1])  # per head: [q, k, v]
        ch = qkv.shape[1] // 3
        q, k, v = torch.split(qkv, ch, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        weight = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale), dim=-1)
        h = torch.einsum("bts,bcs->bct", weight, v).reshape(b, -1, x.shape[-1])
        return (x + self.proj_out(h)).reshape(b, c, *spatial)


class RefDownsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class RefUpsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class RefUNetModel(nn.Module):
    """attention_ds: downsampling rates with attention (the seed's image_size // res for res in "16,8")."""

    def __init__(self, in_channels, model_channels, out_channels, num_res_blocks, attention_ds, channel_mult,
                 num_classes=None, num_heads=1, num_heads_upsample=-1, super_resolution=False):
        super().__init__()
        num_heads_upsample = num_heads if num_heads_upsample == -1 else num_heads_upsample
        self.model_channels, self.num_classes, self.super_resolution = model_channels, num_classes, super_resolution
        emb = 4 * model_channels
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes, emb)
        first_in = in_channels * (2 if super_resolution else 1)
        self.input_blocks = nn.ModuleList([Seq(nn.Conv2d(first_in, model_channels, 3, padding=1))])
        chans, ch, ds = [model_channels], model_channels, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [RefResBlock(ch, emb, mult * model_channels)]
                ch = mult * model_channels
                if ds in attention_ds:
                    layers.append(RefAttention(ch, num_heads))
                self.input_blocks.append(Seq(*layers))
                chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(Seq(RefDownsample(ch)))
                chans.append(ch)
                ds *= 2
        self.middle_block = Seq(RefResBlock(ch, emb, ch), RefAttention(ch, num_heads), RefResBlock(ch, emb, ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [RefResBlock(ch + chans.pop(), emb, model_channels * mult)]
                ch = model_channels * mult
                if ds in attention_ds:
                    layers.append(RefAttention(ch, num_heads_upsample))
                if level and i == num_res_blocks:
                    layers.append(RefUpsample(ch))
                    ds //= 2
                self.output_blocks.append(Seq(*layers))
        self.out = nn.Sequential(nn.GroupNorm(32, ch), nn.SiLU(), nn.Conv2d(model_channels, out_channels, 3, padding=1))

    def forward(self, x, timesteps, y=None, low_res=None):
        if self.super_resolution:
            x = torch.cat([x, F.interpolate(low_res, x.shape[-2:], mode="bilinear")], dim=1)
        emb = self.time_embed(sinusoid(timesteps, self.model_channels))
        if self.num_classes is not None:
            emb = emb + self.label_emb(y)
        hs, h = [], x
        for module in self.input_blocks:
            h = module(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for module in self.output_blocks:
            h = module(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)
