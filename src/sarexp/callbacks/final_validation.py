"""Validate once before training ends without a validation, so the monitored metric, the best checkpoint, the
last checkpoint saved at validation end and the value returned to a sweeper exist.

Two ways a run can end unvalidated in Lightning:
- it reaches `trainer.max_steps` inside an epoch and simply ends. Lightning does validate after a batch when
  `trainer.should_stop` is set (early stopping; the `max_time` Timer sets it too), so this callback sets it on
  the batch that reaches `max_steps`;
- `trainer.max_epochs` is not a multiple of `trainer.check_val_every_n_epoch` (37 epochs validated every 5:
  the last validation follows epoch 35, epochs 36–37 end unvalidated). At the start of the last epoch this
  callback lowers the interval to 1 for the rest of the run, so that epoch ends with a validation.
"""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class ValidateBeforeStop(Callback):
    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        max_steps = trainer.max_steps
        if max_steps is not None and max_steps >= 0 and trainer.global_step >= max_steps:
            trainer.should_stop = True

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        every, max_epochs = trainer.check_val_every_n_epoch, trainer.max_epochs
        if (every is not None and every > 1 and max_epochs is not None and max_epochs > 0
                and trainer.current_epoch == max_epochs - 1 and max_epochs % every):
            trainer.check_val_every_n_epoch = 1
