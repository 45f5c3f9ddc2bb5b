"""What Lightning's fit loop does after the training batch that just ended, asked from `on_train_batch_end`
(and from `on_validation_end` of a validation that runs after that batch): whether it validates, whether
training ends. The answers are Lightning's own decisions (2.6: `_TrainingEpochLoop._should_check_val_fx`,
`_FitLoop.done`), so callbacks that act on them stay in step with the loop."""

import lightning.pytorch as pl


def validation_follows(trainer: pl.Trainer) -> bool:
    """Whether Lightning runs validation right after this training batch."""
    loop = trainer.fit_loop
    return trainer.enable_validation and bool(loop.epoch_loop._should_check_val_fx(loop._data_fetcher))


def training_ends(trainer: pl.Trainer) -> bool:
    """Whether the fit ends after this training batch: `max_steps` reached, the last batch of the last epoch
    (`max_epochs`), or a stop requested (early stopping, Lightning's `max_time` timer, ValidateBeforeStop)
    that the loop honours. A stop requested later in this batch's hooks is seen only by later callbacks."""
    loop = trainer.fit_loop
    if _reached(trainer.global_step, trainer.max_steps):
        return True
    if trainer.should_stop and loop._can_stop_early:
        return True
    last_batch_of_epoch = loop.epoch_loop._num_ready_batches_reached()
    return last_batch_of_epoch and _reached(trainer.current_epoch + 1, trainer.max_epochs)


def _reached(value: int, limit: int | None) -> bool:
    return limit is not None and limit >= 0 and value >= limit
