"""Training of a denoising diffusion model: the network predicts the noise added by the process at a sampled
timestep (the process, the timestep sampler and the network come from their own config groups).

- EMA: `ema_net`, a frozen copy updated after every optimizer step, is saved in the checkpoint beside `net`;
  `task=sample` and `task=likelihood` use it by default.
- Microbatches (the seed's `microbatch`): gradient accumulation by the trainer. A seed run with
  `batch_size=B microbatch=m` is `data.batch_size=m trainer.accumulate_grad_batches=B/m` here; the EMA is
  updated once per optimizer step, the loss-aware timestep sampler after every microbatch.
- Conditioning: every batch key the network lists in `net.conditioning` (`label`, `low_res`) is passed to it.
"""

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim import Optimizer

from sarexp.diffusion.gaussian import GaussianDiffusion, ModelFn
from sarexp.diffusion.timestep_samplers import create_timestep_sampler
from sarexp.errors import DataError, TrainingError
from sarexp.optim.ema import frozen_copy, update_ema, warmed_decay
from sarexp.optim.param_groups import lightning_optimization

Batch = dict[str, torch.Tensor]


def conditioning_of(net: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
    """The batch entries the network is conditioned on (`net.conditioning`), checked to be present."""
    keys = tuple(getattr(net, "conditioning", ()))
    missing = [key for key in keys if key not in batch]
    if missing:
        raise DataError(
            f"the model is conditioned on {', '.join(missing)} but the data batches have only "
            f"{', '.join(sorted(batch))}; set data.num_classes / data.low_res_size to match the model"
        )
    return {key: batch[key] for key in keys}


def model_function(net: nn.Module, conditioning: dict[str, torch.Tensor]) -> ModelFn:
    """Bind the conditioning so the process and samplers can call `model_fn(x_t, t)`."""
    return lambda x, t: net(x, t, **conditioning)


class DiffusionSystem(pl.LightningModule):
    """ε-prediction training of `net` under `diffusion`; validation and test log the same losses at seeded
    timesteps and noise (comparable across epochs). schedule_sampler: ``uniform`` or ``loss-second-moment``
    (importance sampling of t by the loss history, as in the seed)."""

    def __init__(
        self,
        net: nn.Module,
        diffusion: GaussianDiffusion,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        schedule_sampler: str = "uniform",
        ema_decay: float = 0.9999,
        ema_warmup: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"system.ema_decay must be in [0, 1), got {ema_decay}")
        self.net = net
        self.ema_net = frozen_copy(net)
        self.diffusion = diffusion
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.timestep_sampler = create_timestep_sampler(schedule_sampler, diffusion.num_timesteps)
        self.ema_decay = ema_decay
        self.ema_warmup = ema_warmup

    def forward(self, x: torch.Tensor, t: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor:
        return self.net(x, t, **conditioning)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        x0 = batch["image"]
        t, weights = self.timestep_sampler.sample(x0.shape[0], x0.device)
        terms = self.diffusion.training_losses(model_function(self.net, conditioning_of(self.net, batch)), x0, t)
        self.timestep_sampler.update(self._gathered(t), self._gathered(terms["loss"].detach()))
        loss = (terms["loss"] * weights).mean()
        if not torch.isfinite(loss):
            raise TrainingError(
                f"non-finite training loss ({loss.item()}) at step {self.global_step}; "
                "lower optimizer.lr or check the data"
            )
        self._log_terms("train", terms, x0.shape[0], loss)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("val", batch, batch_idx)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("test", batch, batch_idx)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Step, then move the EMA towards the new weights (once per optimizer step, not per microbatch)."""
        super().optimizer_step(*args, **kwargs)
        decay = warmed_decay(self.ema_decay, self.global_step) if self.ema_warmup else self.ema_decay
        update_ema(self.ema_net, self.net, decay)

    def configure_optimizers(self) -> Any:
        # built on the raw net: the EMA copy is a deepcopy and has lost the `_optim` hints
        return lightning_optimization(self.optimizer_factory, self.scheduler_factory, self.net,
                                      self.trainer.estimated_stepping_batches)

    def sampling_network(self, use_ema: bool = True) -> nn.Module:
        return self.ema_net if use_ema else self.net

    def _evaluate(self, stage: str, batch: Batch, batch_idx: int) -> None:
        x0 = batch["image"]
        generator = torch.Generator().manual_seed(batch_idx)
        t = torch.randint(0, self.diffusion.num_timesteps, (x0.shape[0],), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
        fn = model_function(self.net, conditioning_of(self.net, batch))
        terms = self.diffusion.training_losses(fn, x0, t, noise)
        self._log_terms(stage, terms, x0.shape[0], terms["loss"].mean())

    def _log_terms(self, stage: str, terms: dict[str, torch.Tensor], batch_size: int, loss: torch.Tensor) -> None:
        training = stage == "train"
        options = {"on_step": training, "on_epoch": True, "batch_size": batch_size, "sync_dist": not training}
        self.log(f"{stage}/loss", loss, prog_bar=True, **options)
        self.log_dict({f"{stage}/{name}": value.mean() for name, value in terms.items() if name != "loss"}, **options)

    def _gathered(self, values: torch.Tensor) -> torch.Tensor:
        """Values from every process (the loss-aware sampler must see the same losses on all ranks)."""
        if self._trainer is None or self._trainer.world_size == 1:
            return values
        return self.all_gather(values).reshape(-1)
