"""The regression LightningModule on a toy problem: it learns, logs, guards against divergence."""

from functools import partial

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from sarexp.errors import TrainingError
from sarexp.losses.focusing import FocusingLoss
from sarexp.metrics.focusing import AmplitudePSNR
from sarexp.optim.schedulers import warmup_cosine
from sarexp.systems.regression import RegressionSystem


class ShiftByOne(nn.Module):
    """A learnable 3-tap filter on the I/Q channels: the target is the input delayed by one sample."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 2, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x[:, :2])


def toy_batches(count: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        iq = torch.randn(8, 2, 64, generator=generator)
        inputs = torch.cat([iq, torch.zeros(8, 1, 64)], dim=1)
        delayed = torch.nn.functional.pad(iq, (1, 0))[..., :-1]  # zero-filled, so a 3-tap filter is exact
        batches.append({"input": inputs, "target": delayed})
    return batches


def make_system(lr: float = 0.05) -> RegressionSystem:
    return RegressionSystem(
        net=ShiftByOne(),
        loss=FocusingLoss(mae=0.0, ssim=0.0, mse=1.0),
        optimizer=partial(torch.optim.Adam, lr=lr),
        scheduler=partial(warmup_cosine, warmup_fraction=0.0, min_lr_ratio=0.1),
        metrics={"psnr": AmplitudePSNR(), "input_psnr": AmplitudePSNR(source="input")},
    )


def test_system_learns_a_shift_and_reports_every_term(tmp_path):
    system = make_system()
    trainer = pl.Trainer(max_epochs=30, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(system, DataLoader(toy_batches(8), batch_size=None), DataLoader(toy_batches(2), batch_size=None))
    metrics = trainer.callback_metrics
    assert metrics["val/mse"] < 1e-3
    assert metrics["val/psnr"] > metrics["val/input_psnr"] + 20
    assert {"val/mae", "val/ssim", "val/huber", "val/edge", "val/loss", "train/mse"} <= set(metrics)


def test_a_non_finite_loss_stops_training_with_a_clear_error(tmp_path):
    system = make_system()
    batch = toy_batches(1)[0]
    batch["input"][0, 0, 0] = float("nan")
    with pytest.raises(TrainingError, match="non-finite training loss .* lower optimizer.lr"):
        system.training_step(batch, 0)


def test_predict_step_passes_bookkeeping_through():
    batch = {**toy_batches(1)[0], "tile": torch.tensor([3, 0, 64, 0, 8])}
    out = make_system().predict_step(batch, 0)
    assert out["preds"].shape == (8, 2, 64) and torch.equal(out["tile"], batch["tile"])
