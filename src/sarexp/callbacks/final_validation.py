"""Validate once before training ends when the last validation is older than the last step, so the monitored
metric, the best checkpoint, `metrics.json`'s monitored value and the value returned to a sweeper exist
whatever the validation interval and whatever ends the run.

Lightning validates only on its schedule (`val_check_interval`, `check_val_every_n_epoch`, or after a batch
that requests a stop, in a validation epoch), so a run ends unvalidated when it reaches `max_steps` inside
an epoch, when its last epoch is off `check_val_every_n_epoch` (37 epochs validated every 5), when its last
batch is off `val_check_interval` (validation every 100 batches, 3 batches trained), and so on. After the
batch at which the fit ends, this callback requests a validation the way early stopping does: it sets
`trainer.should_stop`, and in an epoch that is not a validation epoch it lifts the epoch condition
(`check_val_every_n_epoch=None`, put back when training ends). The validation then runs inside the loop
where Lightning runs every other one: checkpoint names, logged steps and the best checkpoint's timing are
the usual ones. A stop requested by a callback that runs after this one's batch hook (Lightning's `max_time`
timer, in an epoch that does not validate) cannot be seen coming; then the validation loop runs once at the
end of training instead.
"""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from sarexp.callbacks.fit_progress import training_ends, validation_follows

_UNSET = object()


class ValidateBeforeStop(Callback):
    def __init__(self) -> None:
        self._validated_step: int | None = None
        self._epoch_interval: Any = _UNSET

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if not trainer.enable_validation or not training_ends(trainer) or validation_follows(trainer):
            return
        trainer.should_stop = True
        if not trainer.fit_loop.epoch_loop._should_check_val_epoch():
            self._epoch_interval = trainer.check_val_every_n_epoch
            trainer.check_val_every_n_epoch = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == TrainerFn.FITTING:
            self._validated_step = trainer.global_step

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._epoch_interval is not _UNSET:
            trainer.check_val_every_n_epoch, self._epoch_interval = self._epoch_interval, _UNSET
        if trainer.enable_validation and self._validated_step != trainer.global_step:
            _validate_now(trainer)


def _validate_now(trainer: pl.Trainer) -> None:
    """Run the fit's validation loop as the epoch loop does between two batches (Lightning 2.6)."""
    val_loop = trainer.fit_loop.epoch_loop.val_loop
    val_loop.restarting = False
    trainer.validating = True
    try:
        val_loop.run()
    finally:
        trainer.training = True
