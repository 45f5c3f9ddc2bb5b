"""Conditional GAN training with Lightning's manual optimisation: generator G(condition) → sample,
discriminator D(condition ⊕ sample) → feature map. Any conditional GAN fits: the batch keys, networks,
losses and optimizers come from config.

Schedule: each batch is one discriminator micro-step; the discriminator's optimizer steps every
`accumulate_grad_batches` batches, and after every `n_critic` discriminator steps the generator steps once,
its gradient accumulated over the last `accumulate_grad_batches` batches of that cycle. `trainer.max_steps`
counts the optimizer steps of both networks (Lightning's global step in manual optimisation).

Losses:
- adversarial: the debiased Sinkhorn divergence S between D's output features of real and generated samples
  (`adversarial`, a `SinkhornLoss`): D maximises it (loss −S, plus R1 γ/2·E‖∇D(real)‖² when enabled), G
  minimises it;
- generator: lambda_rec·reconstruction (l1 | mse | mrae) + lambda_perceptual·perceptual (feature matching in
  D's stage features, or a frozen user network) + lambda_adversarial·S + lambda_sam·spectral angle.

An EMA of the generator (`ema_generator`, in the checkpoint) serves validation, test and prediction, on whole
inputs or in overlapping `eval_tile` tiles (`eval_overlap` pixels shared) for images that do not fit. Every
piece of training state is in the checkpoint: both optimizers and schedulers (Lightning), the EMA and the
batch counter of the schedule (`on_save_checkpoint`), so a resumed run continues exactly.
Mixed precision comes from `trainer.precision`; clipping (`gradient_clip_val`, by norm) is applied after
the loss scale is removed, in `on_before_optimizer_step`.

DDP (`trainer=ddp`): the generator and the discriminator are each in their own DDP wrapper (`ddp_parts`,
sarexp.strategies.parts), so each backward synchronises exactly the network it trains, and micro-batches that
do not step skip the all-reduce. The Sinkhorn divergence is not a mean over samples: with
`adversarial_batch: global` (default) D's features of all ranks form one batch cloud (a differentiable
all-gather), so W ranks of B samples compute the gradients of one process on the W·B concatenated samples;
`local` compares each rank's own B samples (W clouds of B, their gradients averaged), as the seed's
per-process loss did.
"""

import warnings
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch.optim import Optimizer
from torchmetrics import Metric, MetricCollection

from sarexp.errors import ConfigError, TrainingError
from sarexp.losses.perceptual import feature_l1, load_feature_network
from sarexp.losses.r1 import r1_penalty
from sarexp.losses.sinkhorn import SinkhornLoss
from sarexp.losses.spectral import mrae, spectral_angle
from sarexp.metrics.spectral import whole_image_forward
from sarexp.optim.ema import frozen_copy, update_ema, warmed_decay
from sarexp.optim.param_groups import build_optimizer
from sarexp.strategies.gather import all_gather_with_gradient
from sarexp.strategies.parts import DistributedParts, part_wrappers

Batch = dict[str, Any]
RECONSTRUCTION = ("l1", "mse", "mrae")
ADVERSARIAL_BATCH = ("global", "local")


# Lightning warns that periodic checkpoints under manual optimisation hold the state after the step: that is
# the state this system resumes from (its schedule counter is advanced with it), so the warning is noise.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")


def reconstruction_loss(kind: str, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "l1":
        return F.l1_loss(preds, target)
    if kind == "mse":
        return F.mse_loss(preds, target)
    return mrae(preds, target, eps=1e-3)  # ε-guarded: generated spectra may meet near-zero targets


class ConditionalGANSystem(DistributedParts, pl.LightningModule):
    ddp_parts = ("generator", "discriminator")

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        generator_optimizer: Callable[..., Optimizer],
        discriminator_optimizer: Callable[..., Optimizer],
        generator_scheduler: Callable[..., Any] | None = None,
        discriminator_scheduler: Callable[..., Any] | None = None,
        adversarial: nn.Module | None = None,
        condition_key: str = "rgb",
        target_key: str = "hsi",
        n_critic: int = 1,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: float | None = None,
        use_r1_regularization: bool = True,
        r1_gamma: float = 10.0,
        lambda_rec: float = 1.0,
        lambda_perceptual: float = 0.1,
        lambda_adversarial: float = 0.01,
        lambda_sam: float = 0.1,
        reconstruction: str = "l1",
        perceptual_network: nn.Module | None = None,
        perceptual_weights: str | None = None,
        ema_decay: float = 0.999,
        ema_warmup: bool = True,
        metrics: dict[str, Metric] | None = None,
        eval_tile: int | None = None,
        eval_overlap: int = 32,
        adversarial_batch: str = "global",
    ) -> None:
        super().__init__()
        if n_critic < 1 or accumulate_grad_batches < 1:
            raise ConfigError(f"system.n_critic and system.accumulate_grad_batches must be ≥ 1, got "
                              f"{n_critic} and {accumulate_grad_batches}")
        if reconstruction not in RECONSTRUCTION:
            raise ConfigError(f"system.reconstruction must be one of {', '.join(RECONSTRUCTION)}, got {reconstruction!r}")
        if adversarial_batch not in ADVERSARIAL_BATCH:
            raise ConfigError(f"system.adversarial_batch must be one of {', '.join(ADVERSARIAL_BATCH)}, "
                              f"got {adversarial_batch!r}")
        if not 0.0 <= ema_decay < 1.0:
            raise ConfigError(f"system.ema_decay must be in [0, 1), got {ema_decay}")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = frozen_copy(generator)
        self.adversarial = adversarial if adversarial is not None else SinkhornLoss()
        self.perceptual_network = (load_feature_network(perceptual_network, perceptual_weights)
                                   if perceptual_network is not None else None)
        self.optimizer_factories = (generator_optimizer, discriminator_optimizer)
        self.scheduler_factories = (generator_scheduler, discriminator_scheduler)
        self.condition_key, self.target_key = condition_key, target_key
        self.n_critic, self.accumulate = n_critic, accumulate_grad_batches
        self.gradient_clip_val = gradient_clip_val
        self.use_r1, self.r1_gamma = use_r1_regularization, r1_gamma
        self.weights = {"rec": lambda_rec, "perceptual": lambda_perceptual, "adversarial": lambda_adversarial,
                        "sam": lambda_sam}
        self.reconstruction = reconstruction
        self.ema_decay, self.ema_warmup = ema_decay, ema_warmup
        self.batches_seen = 0
        self.generator_steps = 0
        self.eval_tile, self.eval_overlap = eval_tile, eval_overlap
        self.adversarial_batch = adversarial_batch
        collection = MetricCollection(dict(metrics or {}))
        self.val_metrics = collection.clone(prefix="val/")
        self.test_metrics = collection.clone(prefix="test/")

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        """The EMA generator on whole inputs, in overlapping `eval_tile` tiles when set (MST++ protocol)."""
        return whole_image_forward(self.ema_generator, condition, self.eval_tile, self.eval_overlap)

    def train(self, mode: bool = True) -> "ConditionalGANSystem":
        super().train(mode)
        self.ema_generator.eval()
        if self.perceptual_network is not None:
            self.perceptual_network.eval()
        return self

    # ---------------------------------------------------------------- training
    def on_fit_start(self) -> None:
        strategy = self.trainer.strategy
        if (isinstance(strategy, DDPStrategy) and not part_wrappers(self)
                and not strategy._ddp_kwargs.get("find_unused_parameters")):
            raise ConfigError(f"trainer.strategy={type(strategy).__name__}: the GAN's networks step separately and "
                              "need one DDP wrapper each; use trainer=ddp (sarexp.strategies.ddp.HydraDDPStrategy)")

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        condition, target = batch[self.condition_key], batch[self.target_key]
        opt_g, opt_d = self.optimizers()
        position = self.batches_seen % (self.n_critic * self.accumulate)
        trains_generator = position >= (self.n_critic - 1) * self.accumulate
        steps_discriminator = (position + 1) % self.accumulate == 0
        steps_generator = position == self.n_critic * self.accumulate - 1
        # no generator graph on discriminator-only batches; gradients all-reduced only where an optimizer steps
        with torch.set_grad_enabled(trains_generator), self.skip_sync("generator", not steps_generator):
            fake = self.distributed("generator")(condition)

        self.toggle_optimizer(opt_d)
        with self.skip_sync("discriminator", not steps_discriminator):
            d_terms = self._discriminator_terms(condition, target, fake.detach())
        self.manual_backward(d_terms["d_loss"] / self.accumulate)
        if steps_discriminator:
            self._step(opt_d)
        self.untoggle_optimizer(opt_d)

        if trains_generator:
            self.toggle_optimizer(opt_g)
            g_terms = self._generator_terms(condition, target, fake)
            self.manual_backward(g_terms["g_loss"] / self.accumulate)
            if steps_generator:
                self._step(opt_g)
                self.generator_steps += 1
                decay = warmed_decay(self.ema_decay, self.generator_steps) if self.ema_warmup else self.ema_decay
                update_ema(self.ema_generator, self.generator, decay)
            self.untoggle_optimizer(opt_g)
            d_terms.update(g_terms)
        self.batches_seen += 1
        for name, value in d_terms.items():
            if not torch.isfinite(value):
                raise TrainingError(f"non-finite GAN loss {name} ({value.item()}) at step {self.global_step}; lower "
                                    "system.generator_optimizer.lr / discriminator_optimizer.lr or check the data")
        self.log_dict({f"train/{k}": v.detach() for k, v in d_terms.items()}, on_step=True, on_epoch=True,
                      batch_size=condition.shape[0], prog_bar=False)

    def _discriminator_terms(self, condition: torch.Tensor, target: torch.Tensor,
                             fake: torch.Tensor) -> dict[str, torch.Tensor]:
        real = target.detach().requires_grad_(self.use_r1)
        discriminator = self.distributed("discriminator")
        d_real = discriminator(torch.cat([condition, real], 1))
        d_fake = discriminator(torch.cat([condition, fake], 1))
        divergence = self._adversarial(d_real, d_fake)
        terms = {"d_sinkhorn": divergence, "d_loss": -divergence}
        if self.use_r1:
            terms["d_r1"] = r1_penalty(d_real.float(), real, self.r1_gamma)
            terms["d_loss"] = terms["d_loss"] + terms["d_r1"]
        return terms

    def _generator_terms(self, condition: torch.Tensor, target: torch.Tensor,
                         fake: torch.Tensor) -> dict[str, torch.Tensor]:
        # the plain discriminator: its parameters are frozen here (toggle_optimizer), nothing of it to synchronise
        with torch.no_grad():
            d_real, real_features = self.discriminator(torch.cat([condition, target], 1), features=True)
        d_fake, fake_features = self.discriminator(torch.cat([condition, fake], 1), features=True)
        terms = {"rec": reconstruction_loss(self.reconstruction, fake.float(), target.float()),
                 "adversarial": self._adversarial(d_real, d_fake),
                 "sam": spectral_angle(fake.float(), target.float())}
        if self.perceptual_network is not None:
            with torch.no_grad():
                real_net = self.perceptual_network(target)
            terms["perceptual"] = feature_l1(real_net, self.perceptual_network(fake))
        else:
            terms["perceptual"] = feature_l1(real_features, fake_features)
        total = sum(self.weights[name] * value for name, value in terms.items() if self.weights[name] != 0.0)
        return {**{f"g_{k}": v for k, v in terms.items()}, "g_loss": torch.as_tensor(total, device=fake.device)}

    def _adversarial(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        """The adversarial divergence over this rank's batch, or (`adversarial_batch: global`) over the batches of
        all ranks (sarexp.strategies.gather: DDP then trains as one process on all samples)."""
        if self.adversarial_batch == "local" or self._trainer is None or self.trainer.world_size == 1:
            return self.adversarial(d_real, d_fake)
        return self.adversarial(all_gather_with_gradient(d_real.float()), all_gather_with_gradient(d_fake.float()))

    def _step(self, optimizer: Any) -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedulers = self.lr_schedulers()
        if schedulers is not None:
            schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
            scheduler = next((s for s in schedulers if s.optimizer is optimizer.optimizer), None)
            if scheduler is not None:
                scheduler.step()

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        """Clip after AMP has unscaled the gradients (Lightning calls this hook inside the optimizer step)."""
        if self.gradient_clip_val:
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.gradient_clip_val)

    def configure_optimizers(self) -> Any:
        # built on the raw networks: the EMA copy has lost any `_optim` hints
        optimizers = [build_optimizer(self.optimizer_factories[0], self.generator),
                      build_optimizer(self.optimizer_factories[1], self.discriminator)]
        g_total, d_total = self._planned_steps()
        schedulers = [{"scheduler": factory(opt, total_steps=total), "interval": "step"}
                      for factory, opt, total in zip(self.scheduler_factories, optimizers, (g_total, d_total),
                                                     strict=True) if factory is not None]
        return optimizers, schedulers

    def _planned_steps(self) -> tuple[int, int]:
        """Optimizer steps each network will take: max_steps counts both; otherwise from the batches."""
        total = int(self.trainer.estimated_stepping_batches)
        if self.trainer.max_steps and self.trainer.max_steps > 0:
            return max(total // (self.n_critic + 1), 1), max(total * self.n_critic // (self.n_critic + 1), 1)
        return max(total // (self.accumulate * self.n_critic), 1), max(total // self.accumulate, 1)

    # ---------------------------------------------------------------- checkpoint state
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_schedule"] = {"batches_seen": self.batches_seen, "generator_steps": self.generator_steps}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("gan_schedule", {})
        self.batches_seen = int(state.get("batches_seen", 0))
        self.generator_steps = int(state.get("generator_steps", 0))

    # ---------------------------------------------------------------- evaluation
    def validation_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluate("val", self.val_metrics, batch)

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluate("test", self.test_metrics, batch)

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Any]:
        extras = {key: value for key, value in batch.items() if key != self.condition_key}
        return {"preds": self(batch[self.condition_key]), **extras}

    def _evaluate(self, stage: str, metrics: MetricCollection, batch: Batch) -> dict[str, torch.Tensor]:
        condition, target = batch[self.condition_key], batch[self.target_key]
        preds = self(condition)
        options = {"on_step": False, "on_epoch": True, "batch_size": condition.shape[0], "sync_dist": True}
        self.log(f"{stage}/loss", reconstruction_loss(self.reconstruction, preds.float(), target.float()),
                 prog_bar=True, **options)
        if len(metrics):
            metrics.update(preds=preds, target=target, inputs=condition)
            self.log_dict(metrics, on_step=False, on_epoch=True)
        return {"preds": preds}
