"""Periodic `last.ckpt`, separate from the best-checkpoint logic, that a run resumes from exactly.

Lightning writes `last.ckpt` only at the end of a validation, so a process killed mid-epoch loses the whole
epoch. This callback owns `last.ckpt`: it saves every ``every_n_train_steps`` optimizer steps and/or every
``train_time_interval`` minutes at a step boundary, after every validation during fit, and at the final step
of a fit that ends normally (after its final validation when one follows). Each save also
stores the global RNG states (restored when training restarts), so together with the model's own state
(EMA weights, loss-aware timestep sampler history), optimizer, schedulers and the train loader's position
(`sarexp.data.resumable`), a resumed run continues bit for bit. The file is written atomically by the
trainer's CheckpointIO (`sarexp.io.atomic_checkpoint`).
"""

import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn

from sarexp.callbacks import rng_state
from sarexp.callbacks.fit_progress import training_ends, validation_follows
from sarexp.data.resumable import restore_positions
from sarexp.errors import ConfigError

log = logging.getLogger(__name__)


class LastCheckpoint(Checkpoint):
    """Save ``checkpoint_path`` periodically (steps and/or minutes; null turns a trigger off)."""

    def __init__(
        self,
        checkpoint_path: str,
        every_n_train_steps: int | None = None,
        train_time_interval: float | None = None,
        save_on_validation_end: bool = True,
    ) -> None:
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise ConfigError(
                f"callbacks.last_checkpoint.every_n_train_steps must be >= 1 or null, got {every_n_train_steps}"
            )
        if train_time_interval is not None and train_time_interval <= 0:
            raise ConfigError(
                f"callbacks.last_checkpoint.train_time_interval must be > 0 minutes or null, got {train_time_interval}"
            )
        self.checkpoint_path = Path(checkpoint_path)
        self.every_n_train_steps = every_n_train_steps
        self.interval_s = None if train_time_interval is None else 60.0 * train_time_interval
        self.save_on_validation_end = save_on_validation_end
        self._last_save_time = time.monotonic()
        self._last_save_step = -1
        self._rng_to_restore: dict[str, Any] | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(checkpoint_path=str(self.checkpoint_path))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Put the train loader at the checkpoint's position, then restore the RNG states of the checkpoint
        last: after the loader drew its order, before any batch."""
        self._last_save_time = time.monotonic()
        self._last_save_step = trainer.global_step
        restore_positions(trainer)
        if self._rng_to_restore is not None:
            rng_state.restore(self._rng_to_restore)
            self._rng_to_restore = None

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.sanity_checking or not self._due(trainer) or validation_follows(trainer):
            return  # when validation follows this batch, the save happens after it (on_validation_end)
        self.save(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        if self.save_on_validation_end or self._due(trainer):
            self.save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The final step is saved even when the fit ended in a way no batch saw coming (a stop requested by a
        callback that runs after this one's batch hook)."""
        if trainer.global_step != self._last_save_step:
            self.save(trainer)

    def save(self, trainer: pl.Trainer) -> None:
        """Write the checkpoint (all ranks call this; the strategy writes it once)."""
        started = time.monotonic()
        trainer.save_checkpoint(self.checkpoint_path, weights_only=False)
        self._last_save_time = time.monotonic()
        self._last_save_step = trainer.global_step
        log.debug("saved %s at step %d in %.3f s", self.checkpoint_path, trainer.global_step,
                  self._last_save_time - started)

    def _due(self, trainer: pl.Trainer) -> bool:
        if trainer.global_step == self._last_save_step:
            return False
        if training_ends(trainer):
            return True
        by_steps = self.every_n_train_steps is not None and trainer.global_step % self.every_n_train_steps == 0
        by_time = self.interval_s is not None and time.monotonic() - self._last_save_time >= self.interval_s
        if self.interval_s is not None and trainer.world_size > 1:
            by_time = trainer.strategy.broadcast(by_time)  # every rank must take part in the save
        return by_steps or by_time

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state.capture()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._rng_to_restore = state_dict.get("rng")

