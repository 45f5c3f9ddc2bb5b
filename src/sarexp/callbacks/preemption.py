"""Checkpoint on a signal, at a step boundary: requeue on SLURM's warning signal, stop on Ctrl-C/SIGTERM.

SLURM sends the signal (USR2 by Submitit's `--signal=USR2@delay`) to every rank, maybe during
different steps. A checkpoint written from inside a signal handler could deadlock DDP (one rank saving
while another waits in an all-reduce), so the handler only raises a flag; after each training step the
ranks agree on it (one tiny all-reduce) and save `last.ckpt` together. Then:

- the requeue signal: the handler that owned the signal before fit takes over: Submitit's requeues the job
  and exits; with no Submitit, the job is requeued with `scontrol requeue` under SLURM, or training just
  stops, checkpointed, elsewhere. The requeued job runs the same Hydra job in the same dir and resumes.
- a stop signal (SIGINT = Ctrl-C, SIGTERM = `kill`, `scancel`): training ends with a one-line
  `Interrupted` error (exit code 1) saying that the same command resumes. A second Ctrl-C while waiting for
  the step to finish interrupts at once, as usual.
"""

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Callable

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from sarexp.errors import Interrupted

log = logging.getLogger(__name__)

Handler = Callable[[int, FrameType | None], Any] | int | None


class PreemptionCheckpoint(Callback):
    def __init__(
        self,
        checkpoint_path: str,
        signal_name: str = "SIGUSR2",
        stop_signals: Sequence[str] = ("SIGINT", "SIGTERM"),
    ) -> None:
        self.checkpoint_path = Path(checkpoint_path)
        self.signum = signal.Signals[signal_name]
        self.stop_signums = [signal.Signals[name] for name in stop_signals if signal.Signals[name] != self.signum]
        self._requested = False
        self._stop_requested: signal.Signals | None = None
        self._fitting = False
        self._previous: dict[signal.Signals, Handler] = {}

    @property
    def _signums(self) -> list[signal.Signals]:
        return [self.signum, *self.stop_signums]

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return
        for signum in self._signums:
            if signum not in self._previous:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._on_signal)
        self._fitting = True

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._fitting = False

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Give the signals back (Lightning restores its own snapshot of handlers before this hook)."""
        for signum in list(self._previous):
            self._give_back(signum)
        self._previous.clear()

    def _give_back(self, signum: signal.Signals) -> None:
        """Reinstall the previous owner (kept on record: after a failed fit, Lightning puts this handler
        back, which then forwards to the previous owner)."""
        previous = self._previous.get(signum)
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """While fitting, only raise a flag; otherwise the previous owner handles the signal at once."""
        if self._fitting and signum == self.signum:
            self._requested = True
            return
        if self._fitting and self._stop_requested is None:
            self._stop_requested = signal.Signals(signum)
            log.warning("%s received: saving %s after this training step (again to stop at once)",
                        self._stop_requested.name, self.checkpoint_path)
            self._give_back(self._stop_requested)
            return
        previous = self._previous.get(signal.Signals(signum))
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        stop = trainer.strategy.reduce_boolean_decision(self._stop_requested is not None, all=False)
        requeue = trainer.strategy.reduce_boolean_decision(self._requested, all=False)
        if not (stop or requeue):
            return
        name = self._stop_requested.name if self._stop_requested is not None else self.signum.name
        log.warning("%s received at step %d: saving %s", name, trainer.global_step, self.checkpoint_path)
        trainer.save_checkpoint(self.checkpoint_path, weights_only=False)
        self._requested = False
        self._fitting = False
        if stop:
            raise Interrupted(
                f"training stopped by {name} at step {trainer.global_step}; saved {self.checkpoint_path}: "
                "run the same command again to resume"
            )
        self._hand_over(trainer)

    def _hand_over(self, trainer: pl.Trainer) -> None:
        previous = self._previous.get(self.signum)
        if callable(previous):
            previous(self.signum, None)  # Submitit: requeue (rank 0) and exit
            if not trainer.is_global_zero:
                raise SystemExit(-1)  # rank 0 requeues the whole job; this rank's work is saved
            return
        job = os.environ.get("SLURM_JOB_ID")
        if job is not None and trainer.is_global_zero:
            subprocess.run(["scontrol", "requeue", job], check=False)
            raise SystemExit(-1)
        log.warning("not under SLURM/Submitit: stopping after the checkpoint instead of requeueing")
        trainer.should_stop = True
