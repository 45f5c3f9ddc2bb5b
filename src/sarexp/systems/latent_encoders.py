"""The frozen halves of a latent-diffusion system: the VAE (images ↔ scaled latents) and the text encoder
(prompts → token states, the null prompt "" for classifier-free guidance). Kept as one submodule so their
weights travel in the LDM checkpoint and stay out of the optimizer."""

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sarexp.errors import ConfigError


class FrozenEncoders(nn.Module):
    """tokenizer + text_model (CLIPTextModel) + vae (AutoencoderKL with `config.scaling_factor`), frozen."""

    def __init__(self, tokenizer: Any, text_model: nn.Module, vae: nn.Module) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.text_model = text_model.requires_grad_(False).eval()
        self.vae = vae.requires_grad_(False).eval()

    @classmethod
    def from_checkpoints(cls, clip_checkpoint: str | None, vae_checkpoint: str | None) -> "FrozenEncoders":
        """From a colorization_clip and a colorization_vae checkpoint (or local diffusers folders)."""
        if not clip_checkpoint:
            raise ConfigError("latent diffusion needs clip_checkpoint=PATH (a colorization_clip run's "
                              "checkpoints/last.ckpt, or a diffusers folder with text_encoder/ and tokenizer/)")
        if not vae_checkpoint:
            raise ConfigError("latent diffusion needs vae_checkpoint=PATH (a colorization_vae run's "
                              "checkpoints/last.ckpt, or a diffusers folder with vae/)")
        from sarexp.models.colorization.text import load_text_encoder
        from sarexp.models.colorization.vae import load_vae

        tokenizer, text_model = load_text_encoder(clip_checkpoint)
        return cls(tokenizer, text_model, load_vae(vae_checkpoint))

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    def check_unet(self, net: nn.Module) -> None:
        """The UNet must take [noisy latent, condition latent], predict ε of the latent and attend to the text."""
        config, width = net.config, int(self.text_model.config.hidden_size)
        if config.cross_attention_dim != width:
            raise ConfigError(f"model.cross_attention_dim={config.cross_attention_dim} must equal the text "
                              f"encoder's width {width} (clip_checkpoint)")
        if config.in_channels != 2 * self.latent_channels or config.out_channels != self.latent_channels:
            raise ConfigError(f"model.in_channels / out_channels must be {2 * self.latent_channels} / "
                              f"{self.latent_channels} for a VAE with {self.latent_channels} latent channels")

    def train(self, mode: bool = True) -> "FrozenEncoders":
        return super().train(False)

    # ---- images ----
    def _vae_input(self, images: torch.Tensor) -> torch.Tensor:
        channels = int(self.vae.config.in_channels)
        if images.shape[1] == channels:
            return images
        if images.shape[1] == 1:
            return images.expand(-1, channels, -1, -1)
        raise ConfigError(f"the VAE takes {channels}-channel images, got {images.shape[1]} channels")

    @torch.no_grad()
    def latents(
        self, target: torch.Tensor, condition: torch.Tensor, sample: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(target latent: a posterior sample, or its mode with sample=False; condition latent: the mode)."""
        posterior = self.vae.encode(self._vae_input(target)).latent_dist
        latent = posterior.sample() if sample else posterior.mode()
        return latent * self.scaling_factor, self.condition_latent(condition)

    @torch.no_grad()
    def condition_latent(self, condition: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(self._vae_input(condition)).latent_dist.mode() * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images in [−1, 1] from scaled latents."""
        return self.vae.decode(latents / self.scaling_factor).sample.clamp(-1.0, 1.0)

    # ---- text ----
    @torch.no_grad()
    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """Last hidden states (B, L, width), as Stable Diffusion conditions its UNet; the tokenizer returns
        padded `input_ids` (the colorization word tokenizer, or a transformers tokenizer)."""
        ids = self.tokenizer(list(prompts))["input_ids"]
        return self.text_model(input_ids=ids.to(self.vae.device)).last_hidden_state

    def null_context(self, count: int) -> torch.Tensor:
        """The states of the empty prompt, (count, L, width)."""
        return self.encode_text([""]).expand(count, -1, -1)

    def context(self, prompts: Sequence[str], dropped: torch.Tensor) -> torch.Tensor:
        """Prompt states with the `dropped` ones replaced by the null prompt's."""
        states = self.encode_text(prompts)
        if bool(dropped.any()):
            states = torch.where(dropped.reshape(-1, 1, 1), self.null_context(len(prompts)), states)
        return states
