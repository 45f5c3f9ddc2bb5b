"""Training of a KL-regularised autoencoder (diffusers ``AutoencoderKL``) on one or more image keys of a batch,
and the estimate of its latent scaling factor.

Loss (as LDM's first-stage autoencoders, without the LPIPS and GAN terms, which need pretrained or extra
networks): per image, the summed L1 (or squared) reconstruction error of a posterior sample's decoding plus
``kl_weight`` × the summed KL divergence of the posterior from N(0, I), averaged over the batch (LDM's
``kl_weight`` 1e-6 keeps its meaning); ``pixel_error[_<key>]`` is the mean error per pixel. Every key in
``image_keys`` is encoded by the same VAE; a one-channel image (SAR) is replicated to three channels
(:func:`sarexp.models.colorization.vae.vae_input`).

Scaling factor: during validation the posterior samples of the first ``scaling_batches`` batches are
accumulated; at the end of the validation epoch the VAE config's ``scaling_factor`` becomes 1 / their
standard deviation (when ``estimate_scaling``), so every checkpoint stores the estimate with the weights.
The checkpoint's ``exports/vae`` holds the VAE config for :func:`sarexp.models.colorization.vae.load_vae`.
"""

from collections.abc import Callable, Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from diffusers import AutoencoderKL
from torch.optim import Optimizer

from sarexp.errors import ConfigError, TrainingError
from sarexp.models.colorization.vae import vae_export, vae_input
from sarexp.optim.param_groups import lightning_optimization


class AutoencoderKLSystem(pl.LightningModule):
    """See the module docstring."""

    def __init__(
        self,
        vae: AutoencoderKL,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        image_keys: Sequence[str] = ("optical", "sar"),
        reconstruction: Literal["l1", "l2"] = "l1",
        kl_weight: float = 1e-6,
        estimate_scaling: bool = True,
        scaling_batches: int = 8,
    ) -> None:
        super().__init__()
        if reconstruction not in ("l1", "l2"):
            raise ConfigError(f"system.reconstruction must be 'l1' or 'l2', got {reconstruction!r}")
        if kl_weight < 0 or scaling_batches < 1 or not image_keys:
            raise ConfigError("system.kl_weight must be >= 0, system.scaling_batches >= 1 and system.image_keys "
                              "must name at least one batch key")
        self.vae = vae
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.image_keys = list(image_keys)
        self.reconstruction = reconstruction
        self.kl_weight = kl_weight
        self.estimate_scaling = estimate_scaling
        self.scaling_batches = scaling_batches
        self._moments = torch.zeros(3, dtype=torch.float64)  # count, sum, sum of squares of latent samples

    def images(self, batch: dict[str, Any]) -> torch.Tensor:
        missing = [key for key in self.image_keys if key not in batch]
        if missing:
            raise ConfigError(f"system.image_keys {missing} are not in the batches (keys: {sorted(batch)})")
        return torch.cat([vae_input(batch[key]) for key in self.image_keys])

    def terms(self, images: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        posterior = self.vae.encode(images).latent_dist
        latents = posterior.sample(generator)
        decoded = self.vae.decode(latents).sample
        error = (decoded - images).abs() if self.reconstruction == "l1" else (decoded - images) ** 2
        reconstruction = error.flatten(1).sum(1).mean()
        kl = posterior.kl().mean()
        terms = {"loss": reconstruction + self.kl_weight * kl, "reconstruction": reconstruction, "kl": kl,
                 "pixel_error": error.mean(), "latents": latents.detach()}
        for key, part in zip(self.image_keys, error.detach().chunk(len(self.image_keys))):
            terms[f"pixel_error_{key}"] = part.mean()  # images are stacked key by key (see images())
        return terms

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        images = self.images(batch)
        terms = self.terms(images)
        if not torch.isfinite(terms["loss"]):
            raise TrainingError(f"non-finite VAE loss at step {self.global_step}; lower optimizer.lr")
        self._log("train", terms, len(images))
        return terms["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        images = self.images(batch)
        terms = self.terms(images, torch.Generator(images.device).manual_seed(batch_idx))
        if batch_idx < self.scaling_batches:
            latents = terms["latents"].double().cpu()
            self._moments += torch.stack([torch.tensor(latents.numel()), latents.sum(), (latents ** 2).sum()])
        self._log("val", terms, len(images))

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        images = self.images(batch)
        self._log("test", self.terms(images, torch.Generator(images.device).manual_seed(batch_idx)), len(images))

    def on_validation_epoch_start(self) -> None:
        self._moments.zero_()

    def on_validation_epoch_end(self) -> None:
        count, total, squares = self._moments.tolist()
        if count < 2:
            return
        std = max((squares - total * total / count) / (count - 1), 0.0) ** 0.5
        if self.estimate_scaling and std > 0:
            self.vae.register_to_config(scaling_factor=1.0 / std)
        self.log("val/latent_std", std, sync_dist=True)
        self.log("val/scaling_factor", float(self.vae.config.scaling_factor), sync_dist=True)

    def _log(self, stage: str, terms: dict[str, torch.Tensor], batch_size: int) -> None:
        training = stage == "train"
        options = {"on_step": training, "on_epoch": True, "batch_size": batch_size, "sync_dist": not training}
        self.log(f"{stage}/loss", terms["loss"], prog_bar=True, **options)
        names = ["reconstruction", "kl", "pixel_error", *(f"pixel_error_{key}" for key in self.image_keys)]
        self.log_dict({f"{stage}/{name}": terms[name] for name in names}, **options)

    def configure_optimizers(self) -> Any:
        return lightning_optimization(self.optimizer_factory, self.scheduler_factory, self.vae,
                                      self.trainer.estimated_stepping_batches)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["exports"] = {"vae": vae_export(self.vae, "vae.")}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        config = checkpoint.get("exports", {}).get("vae", {}).get("vae_config", {})
        if "scaling_factor" in config:
            self.vae.register_to_config(scaling_factor=config["scaling_factor"])
