"""Checkpoint on SLURM's warning signal, at a step boundary, then requeue.

SLURM sends the signal (USR2 by Submitit's `--signal=USR2@delay`) to every rank, maybe during
different steps. A checkpoint written from inside a signal handler could deadlock DDP (one rank saving
while another waits in an all-reduce), so the handler only raises a flag; after each training step the
ranks agree on it (one tiny all-reduce) and save `last.ckpt` together. Then the handler that owned the
signal before fit takes over: Submitit's requeues the job and exits; with no Submitit, the job is
requeued with `scontrol requeue` under SLURM, or training just stops, checkpointed, elsewhere.
The requeued job runs the same Hydra job in the same dir and resumes from `last.ckpt`.
"""

import logging
import os
import signal
import subprocess
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Callable

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

Handler = Callable[[int, FrameType | None], Any] | int | None


class PreemptionCheckpoint(Callback):
    def __init__(self, checkpoint_path: str, signal_name: str = "SIGUSR2") -> None:
        self.checkpoint_path = Path(checkpoint_path)
        self.signum = signal.Signals[signal_name]
        self._requested = False
        self._fitting = False
        self._previous: Handler = None
        self._installed = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return
        if not self._installed:
            self._previous = signal.getsignal(self.signum)
            signal.signal(self.signum, self._on_signal)
            self._installed = True
        self._fitting = True

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._fitting = False

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Give the signal back (Lightning restores its own snapshot of handlers before this hook)."""
        if self._installed:
            signal.signal(self.signum, self._previous if self._previous is not None else signal.SIG_DFL)
            self._installed = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """While fitting, only raise the flag; otherwise the previous owner handles the signal at once."""
        if self._fitting:
            self._requested = True
        elif callable(self._previous):
            self._previous(signum, frame)
        elif self._previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if not trainer.strategy.reduce_boolean_decision(self._requested, all=False):
            return
        log.warning("%s received at step %d: saving %s", self.signum.name, trainer.global_step, self.checkpoint_path)
        trainer.save_checkpoint(self.checkpoint_path)
        self._requested = False
        self._fitting = False
        self._hand_over(trainer)

    def _hand_over(self, trainer: pl.Trainer) -> None:
        previous = self._previous
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
