"""MST++ (Cai et al., "MST++: Multi-stage Spectral-wise Transformer for Efficient Spectral Reconstruction",
CVPRW 2022): RGB (3 channels) → 31-band hyperspectral image, 1,619,625 parameters.

Layout (as published): 3×3 conv 3→31; three cascaded MST units; 3×3 conv 31→31; global residual onto the
first conv's output; input reflect-padded at the bottom/right to a multiple of 8 and the output cropped back.
An MST unit is a two-level U-Net of spectral-wise self-attention blocks (MSAB) on 31 → 62 → 124 channels,
one block per level, with a 3×3 embedding conv, 4×4 stride-2 downsampling convs, 2×2 transposed-conv
upsampling, 1×1 fusion convs with the skips, a 3×3 mapping conv and a residual.

Spectral-wise MSA treats each channel as a token: bias-free q, k, v projections into heads of 31 channels;
q and k are L2-normalised along the pixel axis; the (31 × 31) attention per head is
softmax(σ_h · K Qᵀ) with a learned scale σ_h per head, applied to V; a linear projection, plus a positional
branch of two depthwise 3×3 convs (GELU between) on V. Each block adds the attention and then a pre-norm
feed-forward (LayerNorm → 1×1 conv ×4 → GELU → depthwise 3×3 → GELU → 1×1), both residually.

Module names follow the reference implementation's, so its released state dicts load with
``model.pretrained`` (a ``state_dict`` entry and a DataParallel ``module.`` prefix are accepted).
"""

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sarexp.io.checkpoint_io import load_weights_file
from sarexp.errors import ConfigError

HEAD_DIM = 31


class SpectralMSA(nn.Module):
    """Spectral-wise multi-head self-attention on (B, H, W, C) features (tokens are channels)."""

    def __init__(self, dim: int, heads: int, head_dim: int = HEAD_DIM) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        inner = heads * head_dim
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.rescale = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(inner, dim, bias=True)
        self.pos_emb = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False),
            nn.GELU(),
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False),
        )

    def _heads(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, heads·d) → (B, heads, d, N): one row per channel token."""
        batch, pixels, _ = tokens.shape
        return tokens.reshape(batch, pixels, self.heads, self.head_dim).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, channels = x.shape
        flat = x.reshape(batch, height * width, channels)
        v_tokens = self.to_v(flat)
        q = F.normalize(self._heads(self.to_q(flat)), dim=-1)
        k = F.normalize(self._heads(self.to_k(flat)), dim=-1)
        v = self._heads(v_tokens)
        attention = ((k @ q.transpose(-2, -1)) * self.rescale).softmax(dim=-1)  # (B, heads, d, d)
        mixed = (attention @ v).permute(0, 3, 1, 2).reshape(batch, height * width, self.heads * self.head_dim)
        out = self.proj(mixed).reshape(batch, height, width, channels)
        position = self.pos_emb(v_tokens.reshape(batch, height, width, channels).permute(0, 3, 1, 2))
        return out + position.permute(0, 2, 3, 1)


class FeedForward(nn.Module):
    """1×1 conv (×mult) → GELU → depthwise 3×3 → GELU → 1×1 conv, on (B, H, W, C)."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        hidden = dim * mult
        self.net = nn.Sequential(
            nn.Conv2d(dim, hidden, 1, bias=False),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PreNorm(nn.Module):
    """LayerNorm over channels, then ``fn``."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class MSAB(nn.Module):
    """``num_blocks`` × (x + MSA(x), then x + FFN(LN(x))) on (B, C, H, W)."""

    def __init__(self, dim: int, heads: int, num_blocks: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList([SpectralMSA(dim, heads), PreNorm(dim, FeedForward(dim))]) for _ in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        for attention, feed_forward in self.blocks:
            x = attention(x) + x
            x = feed_forward(x) + x
        return x.permute(0, 3, 1, 2)


class MSTUnit(nn.Module):
    """One MST stage: a U-Net of MSABs with ``levels`` down/up levels; channels double per level."""

    def __init__(self, dim: int = 31, levels: int = 2, num_blocks: Sequence[int] = (1, 1, 1)) -> None:
        super().__init__()
        if len(num_blocks) != levels + 1:
            raise ConfigError(f"model.num_blocks needs levels + 1 = {levels + 1} entries, got {list(num_blocks)}")
        self.levels = levels
        self.embedding = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.encoder_layers = nn.ModuleList()
        width = dim
        for level in range(levels):
            self.encoder_layers.append(nn.ModuleList([
                MSAB(width, width // dim, num_blocks[level]),
                nn.Conv2d(width, width * 2, 4, stride=2, padding=1, bias=False),
            ]))
            width *= 2
        self.bottleneck = MSAB(width, width // dim, num_blocks[-1])
        self.decoder_layers = nn.ModuleList()
        for level in range(levels):
            self.decoder_layers.append(nn.ModuleList([
                nn.ConvTranspose2d(width, width // 2, kernel_size=2, stride=2),
                nn.Conv2d(width, width // 2, 1, bias=False),
                MSAB(width // 2, (width // 2) // dim, num_blocks[levels - 1 - level]),
            ]))
            width //= 2
        self.mapping = nn.Conv2d(dim, dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.embedding(x)
        skips = []
        for block, downsample in self.encoder_layers:
            features = block(features)
            skips.append(features)
            features = downsample(features)
        features = self.bottleneck(features)
        for upsample, fusion, block in self.decoder_layers:
            features = fusion(torch.cat([upsample(features), skips.pop()], dim=1))
            features = block(features)
        return self.mapping(features) + x


class MSTPlusPlus(nn.Module):
    """MST++: (B, 3, H, W) RGB → (B, 31, H, W) spectra, any H, W (reflect-padded to a multiple of 8)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 31, n_feat: int = 31, stage: int = 3,
                 levels: int = 2, num_blocks: Sequence[int] = (1, 1, 1), pretrained: str | None = None) -> None:
        super().__init__()
        if n_feat % HEAD_DIM:
            raise ConfigError(f"model.n_feat must be a multiple of the head size {HEAD_DIM}, got {n_feat}")
        self.multiple = 2 ** (levels + 1)  # MST++: 8 for two levels
        self.conv_in = nn.Conv2d(in_channels, n_feat, 3, padding=1, bias=False)
        self.body = nn.Sequential(*[MSTUnit(n_feat, levels, num_blocks) for _ in range(stage)])
        self.conv_out = nn.Conv2d(n_feat, out_channels, 3, padding=1, bias=False)
        self.apply(_init_weights)
        if pretrained:
            load_pretrained(self, Path(pretrained))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % self.multiple, (-width) % self.multiple
        x = F.pad(x, [0, pad_w, 0, pad_h], mode="reflect")
        features = self.conv_in(x)
        out = self.conv_out(self.body(features)) + features
        return out[:, :, :height, :width]


def _init_weights(module: nn.Module) -> None:
    """Linear layers: truncated normal (σ 0.02), zero bias; LayerNorm: 1 and 0 (as published)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def load_pretrained(model: nn.Module, path: Path) -> None:
    """Load a state dict (plain, under ``state_dict``, or with a ``module.`` prefix) safely and strictly."""
    if not path.is_file():
        raise ConfigError(f"model.pretrained: {path} not found; give a .pth/.ckpt state dict of MST++")
    state = load_weights_file(path, "model.pretrained")
    state = state.get("state_dict", state)
    state = {key.removeprefix("module.").removeprefix("net."): value for key, value in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = " ".join(str(error).split("\n")[1:2]).strip()
        raise ConfigError(f"model.pretrained: {path} does not fit this MST++ ({detail[:200]})") from None
