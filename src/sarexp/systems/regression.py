"""Supervised regression: a network maps `batch[input_key]` to `batch[target_key]` under a composite loss."""

from typing import Any, Callable

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim import Optimizer
from torchmetrics import Metric, MetricCollection

from sarexp.errors import TrainingError
from sarexp.metrics.spectral import whole_image_forward
from sarexp.optim.param_groups import lightning_optimization

Batch = dict[str, torch.Tensor]


class RegressionSystem(pl.LightningModule):
    """Train/validate/test/predict loop for dense regression.

    The loss returns a dict of named terms with the weighted total under ``"loss"``; every term is logged.
    Metrics are torchmetrics objects updated with keyword arguments ``preds``, ``target`` and ``inputs``
    (torchmetrics passes each metric only the arguments its ``update`` takes), so a metric can compare
    the input itself with the target as a baseline.

    ``input_key`` / ``target_key`` name the batch entries (SSM4SAR: input, target; HSI: rgb, hsi).
    Validation, test and prediction put whole samples through the network, in overlapping
    ``eval_tile`` × ``eval_tile`` tiles (``eval_overlap`` pixels shared) when set — for images that do not
    fit at once (:func:`sarexp.metrics.spectral.whole_image_forward`).
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        metrics: dict[str, Metric] | None = None,
        input_key: str = "input",
        target_key: str = "target",
        eval_tile: int | None = None,
        eval_overlap: int = 32,
    ) -> None:
        super().__init__()
        self.net = net
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        collection = MetricCollection(dict(metrics or {}))
        self.val_metrics = collection.clone(prefix="val/")
        self.test_metrics = collection.clone(prefix="test/")
        self.input_key = input_key
        self.target_key = target_key
        self.eval_tile = eval_tile
        self.eval_overlap = eval_overlap

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)

    def evaluate_net(self, inputs: torch.Tensor) -> torch.Tensor:
        """The network on whole samples (tiled when ``eval_tile`` is set)."""
        return whole_image_forward(self.net, inputs, self.eval_tile, self.eval_overlap)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        preds = self.net(batch[self.input_key])
        terms = self.loss(preds, batch[self.target_key])
        if not torch.isfinite(terms["loss"]):
            raise TrainingError(
                f"non-finite training loss ({terms['loss'].item()}) at step {self.global_step}; "
                "lower optimizer.lr or check the data"
            )
        self._log_terms("train", terms, batch)
        return terms["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluate("val", self.val_metrics, batch)

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluate("test", self.test_metrics, batch)

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Any]:
        """Predictions with the batch's bookkeeping entries (scene, position, …) for prediction writers."""
        extras = {key: value for key, value in batch.items() if key not in (self.input_key, self.target_key)}
        return {"preds": self.evaluate_net(batch[self.input_key]), **extras}

    def configure_optimizers(self) -> Any:
        return lightning_optimization(self.optimizer_factory, self.scheduler_factory, self,
                                      self.trainer.estimated_stepping_batches)

    def _evaluate(self, stage: str, metrics: MetricCollection, batch: Batch) -> dict[str, torch.Tensor]:
        preds = self.evaluate_net(batch[self.input_key])
        self._log_terms(stage, self.loss(preds, batch[self.target_key]), batch)
        metrics.update(preds=preds, target=batch[self.target_key], inputs=batch[self.input_key])
        self.log_dict(metrics, on_step=False, on_epoch=True)
        return {"preds": preds}

    def _log_terms(self, stage: str, terms: dict[str, torch.Tensor], batch: Batch) -> None:
        """Log the total (shown in the progress bar) and each named term, per step while training."""
        options = {"on_step": stage == "train", "on_epoch": True, "batch_size": batch[self.input_key].shape[0],
                   "sync_dist": stage != "train"}  # epoch means over all ranks; no per-step all-reduce
        self.log(f"{stage}/loss", terms["loss"], prog_bar=True, **options)
        self.log_dict({f"{stage}/{name}": value for name, value in terms.items() if name != "loss"}, **options)
