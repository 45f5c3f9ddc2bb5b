"""Supervised classification (multi-label, multi-class or binary) of `batch[input_key]` into `batch[target_key]`."""

from typing import Any, Callable, Literal

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim import Optimizer
from torchmetrics import Metric, MetricCollection

from sarexp.errors import ConfigError, TrainingError
from sarexp.optim.param_groups import lightning_optimization

Batch = dict[str, torch.Tensor]
Mode = Literal["multilabel", "multiclass", "binary"]


class ClassificationSystem(pl.LightningModule):
    """Train/validate/test/predict loop for classifiers whose net returns logits.

    Metrics (torchmetrics, configured in YAML) see probabilities — sigmoid for multi-label and binary,
    softmax for multi-class — and integer targets. ``scores`` are weighted sums of computed metrics (for
    example the upstream BigEarthNet selection score), logged next to them so they can be the monitor.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        metrics: dict[str, Metric] | None = None,
        scores: dict[str, dict[str, float]] | None = None,
        mode: Mode = "multilabel",
        input_key: str = "image",
        target_key: str = "label",
    ) -> None:
        super().__init__()
        self.net = net
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.mode = mode
        self.input_key = input_key
        self.target_key = target_key
        metrics = dict(metrics or {})
        self.scores = {name: dict(weights) for name, weights in (scores or {}).items()}
        for name, weights in self.scores.items():
            unknown = sorted(set(weights) - set(metrics))
            if unknown:
                raise ConfigError(
                    f"config key 'system.scores.{name}' weighs {unknown}, which are not in system.metrics "
                    f"({sorted(metrics)}); name metrics defined there"
                )
        collection = MetricCollection(metrics)
        self.val_metrics = collection.clone(prefix="val/")
        self.test_metrics = collection.clone(prefix="test/")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        logits = self.net(batch[self.input_key])
        loss = self.loss(*self._loss_arguments(logits, batch[self.target_key]))
        if not torch.isfinite(loss):
            raise TrainingError(
                f"non-finite training loss ({loss.item()}) at step {self.global_step}; "
                "lower optimizer.lr or check the data"
            )
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("val", self.val_metrics, batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate("test", self.test_metrics, batch)

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_scores("test", self.test_metrics)

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Any]:
        extras = {key: value for key, value in batch.items() if key not in (self.input_key, self.target_key)}
        return {"probs": self.probabilities(self.net(batch[self.input_key])), **extras}

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self.mode == "multiclass":
            return logits.softmax(dim=-1)
        probs = logits.sigmoid()
        return probs.reshape(-1) if self.mode == "binary" else probs

    def configure_optimizers(self) -> Any:
        return lightning_optimization(self.optimizer_factory, self.scheduler_factory, self,
                                      self.trainer.estimated_stepping_batches)

    def _loss_arguments(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes and dtypes each kind of loss expects: float targets for BCE, long class indices for CE."""
        if self.mode == "multiclass":
            return logits, target.long()
        if self.mode == "binary":
            return logits.reshape(-1), target.reshape(-1).to(logits.dtype)
        return logits, target.to(logits.dtype)

    def _evaluate(self, stage: str, metrics: MetricCollection, batch: Batch) -> None:
        logits = self.net(batch[self.input_key])
        target = batch[self.target_key]
        loss = self.loss(*self._loss_arguments(logits, target))
        self.log(f"{stage}/loss", loss, prog_bar=True, on_epoch=True, batch_size=logits.shape[0], sync_dist=True)
        target = target.reshape(-1) if self.mode == "binary" else target
        metrics.update(self.probabilities(logits), target.long())

    def _log_scores(self, stage: str, metrics: MetricCollection) -> None:
        """Log each metric, then the weighted sums of them; compute() once for both."""
        if not len(metrics):
            return
        values = metrics.compute()
        self.log_dict(values)
        for name, weights in self.scores.items():
            total = sum(weight * values[f"{stage}/{metric}"] for metric, weight in weights.items())
            self.log(f"{stage}/{name}", total)
        metrics.reset()
