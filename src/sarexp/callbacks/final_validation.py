"""Validate once when training stops mid-epoch on `trainer.max_steps`, so the monitored metric, the best
checkpoint and the value returned to a sweeper exist.

Lightning validates at the end of an epoch (or every `val_check_interval`); a run that reaches `max_steps`
inside an epoch simply ends, without any validation. Lightning does validate after a batch when
`trainer.should_stop` is set (early stopping; the `max_time` Timer sets it too), so this callback sets it on the
batch that reaches `max_steps`.
"""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class ValidateBeforeStop(Callback):
    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        max_steps = trainer.max_steps
        if max_steps is not None and max_steps >= 0 and trainer.global_step >= max_steps:
            trainer.should_stop = True
