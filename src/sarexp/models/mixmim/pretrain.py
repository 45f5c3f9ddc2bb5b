"""MixMIM pretraining network: mix two images, encode, decode both images from the mixed tokens.

The decoder reconstructs whole patches of `encoder_stride` pixels (32 for a 4-stage Swin with patch 4) on
the last stage's token grid: a linear map to the decoder width, mask tokens, ViT blocks (timm's Block)
with fixed sin-cos positions and a per-patch pixel head. Unmixing and the loss live in
``sarexp.losses.mixmim``; this module only returns the two decoder branches and the mask.
"""

from collections.abc import Sequence

import torch
from timm.layers import trunc_normal_
from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed
from timm.models.vision_transformer import Block
from torch import nn

from sarexp.models.mixmim.encoder import MixMIMEncoder, _init_weights
from sarexp.models.mixmim.mixing import draw_mix_mask
from sarexp.models.mixmim.optim_hints import mark_no_weight_decay


class MixMIMPretrainNet(nn.Module):
    """forward(images) → (pred (2B, L, p², C), mask (h, w) bool); :meth:`patchify` gives targets (B, L, p², C).

    Row b of the first half of `pred` reconstructs image b where the mask is True (its hidden tokens);
    row b of the second half reconstructs image B−1−b where the mask is False.
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
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        mask_ratio: float = 0.5,
    ) -> None:
        super().__init__()
        self.encoder = MixMIMEncoder(
            img_size, patch_size, in_chans, embed_dim, depths, num_heads, window_sizes, mlp_ratio, qkv_bias,
            drop_path_rate,
        )
        self.mask_ratio = mask_ratio
        stride = self.encoder.encoder_stride
        self.decoder_embed = nn.Linear(self.encoder.num_features, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        positions = build_sincos2d_pos_embed(list(self.encoder.out_grid), decoder_dim)
        self.register_buffer("decoder_pos_embed", positions.unsqueeze(0))
        self.decoder_blocks = nn.ModuleList(
            Block(decoder_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_layer=nn.LayerNorm)
            for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, stride * stride * in_chans)
        for module in (self.decoder_embed, *self.decoder_blocks, self.decoder_norm, self.decoder_pred):
            module.apply(_init_weights)
        trunc_normal_(self.mask_token, std=0.02)
        mark_no_weight_decay(self)

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mask = draw_mix_mask(self.encoder.out_grid, self.mask_ratio, generator, images.device)
        tokens = self.decoder_embed(self.encoder(images, mask))
        hidden = mask.view(1, -1, 1)
        mask_tokens = self.mask_token.expand_as(tokens).to(tokens.dtype)
        own = torch.where(hidden, mask_tokens, tokens)  # row b keeps image b's visible tokens
        partner = torch.where(hidden, tokens, mask_tokens)  # row b keeps image B−1−b's tokens
        x = torch.cat([own, partner]) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        pred = self.decoder_pred(self.decoder_norm(x))
        return pred.view(*pred.shape[:2], -1, self.encoder.in_chans), mask

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, L, p², C) patches of `encoder_stride` pixels, row-major over the token grid."""
        batch, channels, height, width = images.shape
        p = self.encoder.encoder_stride
        patches = images.reshape(batch, channels, height // p, p, width // p, p).permute(0, 2, 4, 3, 5, 1)
        return patches.reshape(batch, (height // p) * (width // p), p * p, channels)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`patchify` for square images."""
        batch, tokens, _, channels = patches.shape
        p = self.encoder.encoder_stride
        side = round(tokens**0.5)
        images = patches.reshape(batch, side, side, p, p, channels).permute(0, 5, 1, 3, 2, 4)
        return images.reshape(batch, channels, side * p, side * p)
