"""ClassificationSystem: losses and probabilities per mode, metrics on probabilities, weighted scores."""

from functools import partial

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics.classification import (
    BinaryAccuracy,
    MulticlassAccuracy,
    MultilabelAveragePrecision,
    MultilabelF1Score,
)
from torchmetrics.functional.classification import multilabel_average_precision, multilabel_f1_score

from sarexp.errors import ConfigError, TrainingError
from sarexp.systems.classification import ClassificationSystem


def _batches(inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 16) -> DataLoader:
    items = [{"image": x, "label": y} for x, y in zip(inputs, labels)]
    return DataLoader(items, batch_size=batch_size)


def _fit(system: ClassificationSystem, loader: DataLoader, steps: int) -> pl.Trainer:
    trainer = pl.Trainer(
        max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0,
    )
    trainer.fit(system, train_dataloaders=loader, val_dataloaders=loader)
    return trainer


def _system(net: nn.Module, loss: nn.Module, mode: str, **kwargs) -> ClassificationSystem:
    return ClassificationSystem(net, loss, partial(torch.optim.Adam, lr=0.05), mode=mode, **kwargs)


def test_multilabel_metrics_and_score_match_torchmetrics_on_the_same_probabilities():
    torch.manual_seed(0)
    inputs = torch.randn(64, 4)
    labels = (inputs[:, :3] > 0).float()
    metrics = {
        "ap_macro": MultilabelAveragePrecision(num_labels=3, average="macro"),
        "f1_micro": MultilabelF1Score(num_labels=3, average="micro"),
    }
    system = _system(nn.Linear(4, 3), nn.BCEWithLogitsLoss(), "multilabel", metrics=metrics,
                     scores={"selection": {"ap_macro": 1.2, "f1_micro": 1.1}})
    trainer = _fit(system, _batches(inputs, labels), steps=40)

    with torch.no_grad():
        probs = system.probabilities(system(inputs))
    ap = multilabel_average_precision(probs, labels.long(), num_labels=3, average="macro")
    f1 = multilabel_f1_score(probs, labels.long(), num_labels=3, average="micro")
    logged = trainer.callback_metrics
    assert torch.isclose(logged["val/ap_macro"], ap, atol=1e-6)
    assert torch.isclose(logged["val/f1_micro"], f1, atol=1e-6)
    assert torch.isclose(logged["val/selection"], 1.2 * ap + 1.1 * f1, atol=1e-5)
    assert ap > 0.95, "a linearly separable problem is learnt"


def test_multiclass_uses_cross_entropy_on_class_indices_and_softmax():
    torch.manual_seed(1)
    centers = torch.eye(3) * 4
    labels = torch.arange(60) % 3
    inputs = centers[labels] + 0.3 * torch.randn(60, 3)
    system = _system(nn.Linear(3, 3), nn.CrossEntropyLoss(), "multiclass",
                     metrics={"accuracy": MulticlassAccuracy(num_classes=3, average="micro")})
    trainer = _fit(system, _batches(inputs, labels), steps=40)
    assert trainer.callback_metrics["val/accuracy"] == 1.0
    probs = system.probabilities(torch.randn(5, 3))
    assert torch.allclose(probs.sum(dim=1), torch.ones(5))


def test_binary_takes_one_logit_per_sample_and_float_targets():
    torch.manual_seed(2)
    inputs = torch.randn(48, 2)
    labels = (inputs[:, 0] > 0).float()
    system = _system(nn.Linear(2, 1), nn.BCEWithLogitsLoss(), "binary",
                     metrics={"accuracy": BinaryAccuracy()})
    trainer = _fit(system, _batches(inputs, labels), steps=40)
    assert trainer.callback_metrics["val/accuracy"] > 0.9
    assert system.probabilities(torch.zeros(7, 1)).shape == (7,)


def test_a_score_over_an_undefined_metric_names_the_key():
    with pytest.raises(ConfigError, match=r"system.scores.selection.*\['f1_macro'\]"):
        _system(nn.Linear(2, 2), nn.BCEWithLogitsLoss(), "multilabel",
                metrics={"ap": MultilabelAveragePrecision(num_labels=2)}, scores={"selection": {"f1_macro": 1.0}})


def test_a_non_finite_loss_stops_training_with_a_clear_error():
    inputs = torch.full((8, 2), float("nan"))
    system = _system(nn.Linear(2, 2), nn.BCEWithLogitsLoss(), "multilabel")
    with pytest.raises(TrainingError, match="non-finite training loss"):
        _fit(system, _batches(inputs, torch.zeros(8, 2)), steps=2)
