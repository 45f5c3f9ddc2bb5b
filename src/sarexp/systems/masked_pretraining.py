"""Masked-image pretraining (MixMIM / SAR-W-MixMAE): the net mixes, encodes and decodes; the loss unmixes.

The net (``sarexp.models.mixmim.pretrain.MixMIMPretrainNet``) returns its decoder output and the mixing
mask and offers ``patchify`` / ``unpatchify``; the loss compares the unmixed reconstruction with the
patchified input, each pixel weighted by `weighting` (polarization-aware weights) computed from
``batch[weight_key]``: the raw dB image (``image_db``, as the paper describes) or the normalised input
(``image``, what the released code does).
"""

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim import Optimizer

from sarexp.errors import ConfigError, TrainingError
from sarexp.optim.param_groups import lightning_optimization

Batch = dict[str, torch.Tensor]


class MaskedPretrainingSystem(pl.LightningModule):
    """Logs ``train/loss``, ``val/loss`` (a fixed mask per validation batch, so epochs compare), ``test/loss``,
    and ``{val,test}/loss_zero_prediction``, the loss of a decoder that predicts zeros (with `norm_pix_loss`:
    each patch's mean), the reference a model that learned anything stays below. Validation returns the
    reconstructions in input units as ``preds`` for sample plots.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        weighting: nn.Module | None = None,
        input_key: str = "image",
        weight_key: str = "image_db",
    ) -> None:
        super().__init__()
        self.net = net
        self.loss = loss
        self.weighting = weighting
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.input_key = input_key
        self.weight_key = weight_key

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self._reconstruction_loss(batch)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"non-finite training loss ({loss.item()}) at step {self.global_step}; "
                "lower optimizer.lr or check the data"
            )
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch[self.input_key]))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluate("val", batch, batch_idx)

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluate("test", batch, batch_idx)

    def configure_optimizers(self) -> Any:
        return lightning_optimization(self.optimizer_factory, self.scheduler_factory, self,
                                      self.trainer.estimated_stepping_batches)

    def _evaluate(self, stage: str, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        pred, target, mask, weights = self._forward(batch, torch.Generator().manual_seed(batch_idx))
        options = {"on_epoch": True, "batch_size": len(target)}
        self.log(f"{stage}/loss", self.loss(pred, target, mask, weights), prog_bar=True, **options)
        zero = self.loss(torch.zeros_like(pred), target, mask, weights)
        self.log(f"{stage}/loss_zero_prediction", zero, **options)
        return {"preds": self.net.unpatchify(self.loss.reconstruct(pred, target, mask))}

    def _reconstruction_loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.loss(*self._forward(batch, generator))

    def _forward(
        self, batch: Batch, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The loss's arguments: (decoder output, target patches, mixing mask, weight patches or None)."""
        images = batch[self.input_key]
        pred, mask = self.net(images, generator=generator)
        weights = None
        if self.weighting is not None:
            if self.weight_key not in batch:
                raise ConfigError(
                    f"config key 'system.weight_key' = {self.weight_key!r} is not in the batch (keys: "
                    f"{sorted(batch)}); use image_db (raw dB) or image (normalised input)"
                )
            weights = self.net.patchify(self.weighting(batch[self.weight_key]))
        return pred, self.net.patchify(images), mask, weights
