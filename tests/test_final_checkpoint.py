"""A fit that ends normally leaves `last.ckpt` at its final step (with the RNG and loader state every periodic
save has) and has validated at that step, whatever ends it and whatever the validation interval: checked
for the ways Lightning can end a fit on a small module, then for every shipped experiment with its own
trainer settings on a 3-batch run, in process."""

import json
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch import nn

from sarexp.callbacks.final_validation import ValidateBeforeStop
from sarexp.callbacks.last_checkpoint import LastCheckpoint
from sarexp.data.resumable import ResumableDataLoader
from sarexp.io.atomic_checkpoint import AtomicCheckpointIO
from sarexp.strategies import ddp
from sarexp.tasks.train import train
from tiny_experiments import EXPERIMENTS, tiny_overrides


class _Regression(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)
        self.validated_at: list[int] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self.layer(batch).pow(2).mean()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val/loss", self.layer(batch).pow(2).mean())

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.validated_at.append(self.global_step)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class _StopAt(Callback):
    """Requests a stop after batch `step`, from a hook that runs after ValidateBeforeStop's (as Lightning's
    `max_time` timer does)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            trainer.should_stop = True


def _loader(n: int, train: bool) -> torch.utils.data.DataLoader:
    data = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    return ResumableDataLoader(data, batch_size=2, shuffle=True) if train else torch.utils.data.DataLoader(data)


ENDINGS = {  # trainer arguments, train batches per epoch → the final step
    "max_epochs, validation every 100 batches": (dict(max_epochs=1, val_check_interval=100,
                                                      check_val_every_n_epoch=None), 3, 3),
    "max_epochs, validation every 0.3 epoch": (dict(max_epochs=2, val_check_interval=0.3), 10, 20),
    "max_epochs off check_val_every_n_epoch": (dict(max_epochs=7, check_val_every_n_epoch=3), 4, 28),
    "min_epochs = max_epochs off check_val_every_n_epoch": (dict(max_epochs=2, min_epochs=2,
                                                                 check_val_every_n_epoch=3), 4, 8),
    "max_epochs, time-based validation interval": (dict(max_epochs=2, val_check_interval="00:01:00:00"), 4, 8),
    "max_steps inside an epoch": (dict(max_steps=5), 10, 5),
    "max_steps inside an epoch off check_val_every_n_epoch": (dict(max_steps=5, check_val_every_n_epoch=2), 10, 5),
    "a later callback's stop off check_val_every_n_epoch": (dict(max_epochs=9, check_val_every_n_epoch=3), 10, 13),
    "max_time": (dict(max_time={"microseconds": 1}), 10, 1),
    "no validation at all": (dict(max_epochs=1, limit_val_batches=0), 3, 3),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_fit_ends_validated_with_last_checkpoint_at_its_final_step(tmp_path, ending):
    arguments, batches, final_step = ENDINGS[ending]
    model = _Regression()
    best = ModelCheckpoint(dirpath=tmp_path, monitor="val/loss", filename="best-{step}")
    callbacks = [ValidateBeforeStop(), LastCheckpoint(str(tmp_path / "last.ckpt")), best]
    if ending.startswith("a later callback"):
        callbacks.append(_StopAt(final_step))
    trainer = pl.Trainer(callbacks=callbacks, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         plugins=[AtomicCheckpointIO()], num_sanity_val_steps=0, **arguments)
    trainer.fit(model, _loader(2 * batches, train=True), _loader(4, train=False))

    assert trainer.global_step == final_step
    last = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == final_step
    assert any(key.startswith("LastCheckpoint") for key in last["callbacks"])  # the RNG states
    assert last["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["served"] > 0  # the loader's position
    if arguments.get("limit_val_batches") == 0:
        assert model.validated_at == [] and best.best_model_path == ""
        return
    assert model.validated_at[-1] == final_step and model.validated_at.count(final_step) == 1
    assert torch.load(best.best_model_path, weights_only=True)["global_step"] in model.validated_at
    assert best.best_model_score is not None


@pytest.fixture
def released_ranks():
    """The DDP presets start a one-rank process group in this process: close it afterwards."""
    yield
    ddp.release_local_ranks()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_ends_a_3_batch_run_validated_with_last_checkpoint(compose_config, tmp_path, experiment,
                                                                            released_ranks):
    """The issue's case: hsi_cswin_gan validates every 100 batches, so a 3-batch run never validated and
    nothing saved at the end of fit: no checkpoint at all, no monitored value."""
    overrides = tiny_overrides(experiment, compose_config, tmp_path)
    cfg = compose_config([*overrides, f"data.root={tmp_path / 'data'}", "trainer.max_epochs=1",
                          "trainer.limit_train_batches=3"])
    value = train(cfg, test=False)

    run = Path(cfg.paths.run_dir)
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    fit_loop = last["loops"]["fit_loop"]
    assert fit_loop["epoch_loop.batch_progress"]["total"]["completed"] == 3  # saved after the final batch
    assert any(key.startswith("LastCheckpoint") for key in last["callbacks"])
    assert fit_loop["state_dict"]["combined_loader"][0]["served"] == 3
    best = list((run / "checkpoints").glob("best-*.ckpt"))
    if (cfg.callbacks.model_checkpoint.get("every_n_epochs") or 1) > 1:
        assert best == []  # colorization_ldm_paper: a best checkpoint every 10 epochs (the seed's save_every)
    else:
        assert len(best) == 1
        assert torch.load(best[0], map_location="cpu", weights_only=True)["global_step"] == last["global_step"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert math.isfinite(metrics[cfg.monitor]) and value == pytest.approx(metrics[cfg.monitor])
