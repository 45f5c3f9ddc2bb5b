"""Tiny frozen encoders and UNet for latent-diffusion tests (no checkpoints, no network)."""

import torch
from diffusers import AutoencoderKL
from transformers import CLIPTextConfig, CLIPTextModel

from sarexp.models.ldm_unet import ldm_unet
from sarexp.systems.latent_encoders import FrozenEncoders

WIDTH = 16


class WordTokenizer:
    """Words → ids (0 pad, 1 start, 2 end, then first-seen order), padded to `length`."""

    def __init__(self, length: int = 12) -> None:
        self.length, self.vocab = length, {}

    def __call__(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        rows = []
        for prompt in prompts:
            words = [self.vocab.setdefault(w, 3 + len(self.vocab)) for w in prompt.replace(",", " ").split()]
            ids = ([1] + words + [2])[: self.length]
            rows.append(ids + [0] * (self.length - len(ids)))
        return {"input_ids": torch.tensor(rows)}


def tiny_encoders(seed: int = 0) -> FrozenEncoders:
    torch.manual_seed(seed)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=64, hidden_size=WIDTH, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=12, eos_token_id=2))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=1, norm_num_groups=4, sample_size=32, scaling_factor=0.5)
    return FrozenEncoders(WordTokenizer(), text, vae)


def tiny_unet(cross_attention_dim: int = WIDTH) -> torch.nn.Module:
    return ldm_unet(sample_size=4, in_channels=8, out_channels=4, block_out_channels=[16, 32],
                    down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"], layers_per_block=1, attention_head_dim=2,
                    cross_attention_dim=cross_attention_dim, norm_num_groups=8)


def batch(size: int = 4, pixels: int = 32, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    seasons = ["winter", "spring", "summer", "autumn"]
    return {
        "sar": torch.rand(size, 1, pixels, pixels, generator=generator) * 2 - 1,
        "optical": torch.rand(size, 3, pixels, pixels, generator=generator) * 2 - 1,
        "prompt": [f"Colorize the image, Region: arctic, Season: {seasons[i % 4]}" for i in range(size)],
    }
