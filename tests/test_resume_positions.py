"""The train loader's position survives a restart in both places Lightning may create the loader, and at both
kinds of checkpoint (inside an epoch, after an epoch's last batch): a run stopped after a checkpoint and
resumed in a new Trainer ends bit-identical to an uninterrupted one (in process; the end-to-end SIGKILL
tests on the shipped experiments are in test_crash_resume.py)."""

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from sarexp.callbacks.last_checkpoint import LastCheckpoint
from sarexp.data.resumable import ResumableDataLoader
from sarexp.io.atomic_checkpoint import AtomicCheckpointIO


class _Noisy(pl.LightningModule):
    """Draws from the global RNG every step and reads `estimated_stepping_batches` for its LR schedule, as
    every sarexp system does (with `max_epochs` set, that makes Lightning create the train loader before it
    restores a checkpoint)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return (self.layer(batch) + torch.randn(1)).pow(2).mean()

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=0.01)
        total = self.trainer.estimated_stepping_batches
        return [optimizer], [torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / (total + 1))]


class _Crash(Exception):
    pass


class _CrashAt(pl.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise _Crash


def _fit(last, max_epochs: int, crash_at: int | None = None) -> dict[str, torch.Tensor]:
    pl.seed_everything(0, verbose=False)
    data = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    loader = ResumableDataLoader(data, batch_size=4, shuffle=True)  # 10 batches per epoch
    callbacks = [LastCheckpoint(str(last), every_n_train_steps=5), *([_CrashAt(crash_at)] if crash_at else [])]
    trainer = pl.Trainer(callbacks=callbacks, max_steps=35, max_epochs=max_epochs, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, plugins=[AtomicCheckpointIO()],
                         deterministic=True)
    model = _Noisy()
    resume = str(last) if last.exists() and crash_at is None else None
    try:
        trainer.fit(model, loader, ckpt_path=resume, weights_only=True)
    except _Crash:
        pass
    return model.state_dict()


@pytest.mark.parametrize("max_epochs", [-1, 30], ids=["max_epochs=-1", "max_epochs=30"])
@pytest.mark.parametrize("crash_at", [15, 10], ids=["inside an epoch", "after an epoch's last batch"])
def test_a_resumed_fit_ends_bit_identical(tmp_path, max_epochs, crash_at):
    expected = _fit(tmp_path / "reference.ckpt", max_epochs)
    _fit(tmp_path / "last.ckpt", max_epochs, crash_at=crash_at)
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == crash_at
    actual = _fit(tmp_path / "last.ckpt", max_epochs)
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name
