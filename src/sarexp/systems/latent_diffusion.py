"""Latent diffusion with an image and a text condition (SAR → optical colorization; Rombach et al. 2022 with
InstructPix2Pix's concatenated image conditioning): a frozen VAE maps images to latents, a frozen text encoder
maps prompts to token states, and the UNet learns ε-prediction on the target latent under the project's
Gaussian process (`sarexp.diffusion`), its input the noisy target latent concatenated with the condition latent,
its cross-attention on the prompt.

- Latents: target = scaling_factor · a sample of the VAE posterior (as Stable Diffusion trains); condition =
  scaling_factor · the posterior mode (deterministic, as InstructPix2Pix), so both channels have unit scale.
  A one-channel condition is repeated to the VAE's input channels.
- Classifier-free guidance: each prompt is replaced by the null prompt (the encoding of "") with probability
  `prompt_dropout`; `train/prompt_dropped` logs the observed fraction.
- Loss: the ε-MSE of the process (the seed's mse_loss_weight scales it), optionally weighted per timestep by
  Min-SNR-γ (`snr_gamma`, :mod:`sarexp.diffusion.loss_weights`); the frozen encoders are kept in the
  checkpoint, so a checkpoint alone colorizes. EMA of the UNet as in the PDM system (`ema_net`).
"""

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim import Optimizer

from sarexp.diffusion.gaussian import GaussianDiffusion, ModelFn
from sarexp.diffusion.guidance import guided_model_fn
from sarexp.diffusion.img2img import img2img
from sarexp.diffusion.loss_weights import min_snr_weights
from sarexp.diffusion.samplers import Sampler
from sarexp.diffusion.timestep_samplers import create_timestep_sampler
from sarexp.errors import ConfigError, DataError, TrainingError
from sarexp.optim.ema import frozen_copy, update_ema, warmed_decay
from sarexp.optim.param_groups import lightning_optimization
from sarexp.systems.latent_encoders import FrozenEncoders

Batch = dict[str, Any]


class LatentDiffusionSystem(pl.LightningModule):
    """ε-prediction of `net` (a UNet2DConditionModel) on VAE latents of `target_key`, conditioned on the latent
    of `condition_key` (concatenated) and the prompt of `prompt_key` (cross-attention)."""

    def __init__(
        self,
        net: nn.Module,
        diffusion: GaussianDiffusion,
        optimizer: Callable[..., Optimizer],
        clip_checkpoint: str | None,
        vae_checkpoint: str | None,
        scheduler: Callable[..., Any] | None = None,
        prompt_dropout: float = 0.1,
        mse_loss_weight: float = 1.0,
        ema_decay: float = 0.9999,
        ema_warmup: bool = True,
        schedule_sampler: str = "uniform",
        snr_gamma: float | None = None,
        target_key: str = "optical",
        condition_key: str = "sar",
        prompt_key: str = "prompt",
        encoders: FrozenEncoders | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= prompt_dropout <= 1.0:
            raise ConfigError(f"system.prompt_dropout must be in [0, 1], got {prompt_dropout}")
        if not 0.0 <= ema_decay < 1.0:
            raise ConfigError(f"system.ema_decay must be in [0, 1), got {ema_decay}")
        if mse_loss_weight <= 0:
            raise ConfigError(f"system.mse_loss_weight must be > 0, got {mse_loss_weight}")
        # `encoders`: already built ones (benchmarks, notebooks); from the two checkpoints otherwise
        self.encoders = encoders or FrozenEncoders.from_checkpoints(clip_checkpoint, vae_checkpoint)
        self.encoders.check_unet(net)
        self.net = net
        self.ema_net = frozen_copy(net)
        self.diffusion = diffusion
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.timestep_sampler = create_timestep_sampler(schedule_sampler, diffusion.num_timesteps)
        if snr_gamma is not None and snr_gamma <= 0:
            raise ConfigError(f"system.snr_gamma must be > 0 (Min-SNR-γ; 5 in the paper) or null, got {snr_gamma}")
        self.snr_gamma = snr_gamma
        self.prompt_dropout = prompt_dropout
        self.mse_loss_weight = mse_loss_weight
        self.ema_decay, self.ema_warmup = ema_decay, ema_warmup
        self.keys = (target_key, condition_key, prompt_key)

    # ---- conditioning ----
    def unet_fn(self, condition_latent: torch.Tensor, use_ema: bool = False) -> Callable[..., torch.Tensor]:
        """net(x_t, t, context) with the condition latent concatenated (repeated over a guidance-doubled batch)."""
        net = self.ema_net if use_ema else self.net

        def call(x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
            condition = condition_latent.repeat(x.shape[0] // condition_latent.shape[0], 1, 1, 1)
            return net(torch.cat([x, condition], dim=1), t, encoder_hidden_states=context).sample

        return call

    def _inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        missing = [key for key in self.keys if key not in batch]
        if missing:
            raise DataError(f"latent diffusion needs batch keys {', '.join(missing)}; the data gives {', '.join(sorted(batch))}")
        target, condition, prompts = (batch[key] for key in self.keys)
        return target, condition, list(prompts)

    def dropped_prompts(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A boolean mask: which of `count` prompts are replaced by the null prompt."""
        return torch.rand(count, generator=generator) < self.prompt_dropout

    # ---- training ----
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        target, condition, prompts = self._inputs(batch)
        latents, condition_latent = self.encoders.latents(target, condition, sample=True)
        dropped = self.dropped_prompts(len(prompts)).to(self.device)
        context = self.encoders.context(prompts, dropped)
        t, weights = self.timestep_sampler.sample(latents.shape[0], latents.device)
        fn = self._model_fn(condition_latent, context)
        terms = self.diffusion.training_losses(fn, latents, t)
        self.timestep_sampler.update(self._gathered(t), self._gathered(terms["loss"].detach()))
        if self.snr_gamma is not None:
            weights = weights * min_snr_weights(self.diffusion, t, self.snr_gamma).to(weights)
        loss = self.mse_loss_weight * (terms["loss"] * weights).mean()
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite training loss ({loss.item()}) at step {self.global_step}; lower optimizer.lr")
        size = latents.shape[0]
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        self.log("train/prompt_dropped", dropped.float().mean(), on_step=False, on_epoch=True, batch_size=size)
        return loss

    def _model_fn(self, condition_latent: torch.Tensor, context: torch.Tensor) -> ModelFn:
        call = self.unet_fn(condition_latent)
        return lambda x, t: call(x, t, context)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("val", batch, batch_idx)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("test", batch, batch_idx)

    def _evaluate(self, stage: str, batch: Batch, batch_idx: int) -> None:
        """The ε-MSE at seeded timesteps and noise, with the prompts kept (comparable across epochs)."""
        target, condition, prompts = self._inputs(batch)
        latents, condition_latent = self.encoders.latents(target, condition, sample=False)
        generator = torch.Generator().manual_seed(batch_idx)
        t = torch.randint(0, self.diffusion.num_timesteps, (latents.shape[0],), generator=generator).to(self.device)
        noise = torch.randn(latents.shape, generator=generator).to(latents)
        context = self.encoders.context(prompts, torch.zeros(len(prompts), dtype=torch.bool, device=self.device))
        terms = self.diffusion.training_losses(self._model_fn(condition_latent, context), latents, t, noise)
        self.log(f"{stage}/loss", terms["loss"].mean(), prog_bar=True, on_epoch=True, batch_size=latents.shape[0],
                 sync_dist=True)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Step, then move the EMA towards the new weights (once per optimizer step, not per accumulated batch)."""
        super().optimizer_step(*args, **kwargs)
        decay = warmed_decay(self.ema_decay, self.global_step) if self.ema_warmup else self.ema_decay
        update_ema(self.ema_net, self.net, decay)

    def configure_optimizers(self) -> Any:
        return lightning_optimization(self.optimizer_factory, self.scheduler_factory, self.net,
                                      self.trainer.estimated_stepping_batches)

    def _gathered(self, values: torch.Tensor) -> torch.Tensor:
        """Values from every process (a loss-aware timestep sampler must see the same losses on all ranks)."""
        if self._trainer is None or self._trainer.world_size == 1:
            return values
        return self.all_gather(values).reshape(-1)

    # ---- inference ----
    @torch.no_grad()
    def colorize(
        self,
        condition: torch.Tensor,
        prompts: list[str],
        sampler: Sampler,
        strength: float = 0.8,
        guidance_scale: float = 7.5,
        generator: torch.Generator | None = None,
        use_ema: bool = True,
    ) -> torch.Tensor:
        """Target images in [−1, 1] from condition images and prompts: guided img2img whose init latent is the
        condition's own latent (the SAR latent, noised to the first kept step), decoded by the VAE."""
        condition = condition.to(self.device)
        condition_latent = self.encoders.condition_latent(condition)
        context = self.encoders.context(prompts, torch.zeros(len(prompts), dtype=torch.bool, device=self.device))
        null = self.encoders.null_context(1)
        fn = guided_model_fn(self.unet_fn(condition_latent, use_ema), context, null, guidance_scale)
        noise = torch.randn(condition_latent.shape, generator=generator).to(condition_latent)
        latents = img2img(sampler, self.diffusion, fn, condition_latent, strength, noise)
        return self.encoders.decode(latents)
