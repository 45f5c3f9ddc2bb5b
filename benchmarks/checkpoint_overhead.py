"""Cost of the periodic last checkpoint: time per atomic save and its share of training time.

    python benchmarks/checkpoint_overhead.py [--steps 10] [--saves 5] [--experiments ssm4sar pdm_sar_lowres]

For each experiment (its shipped, CPU-sized configuration on synthetic data), trains `--steps` steps to
time a step, then writes `last.ckpt` `--saves` times through the same path as training (the trainer's
AtomicCheckpointIO: temporary file, fsync, rename). The share is save time / (interval + save time) at the
default interval of `callbacks.last_checkpoint` (time-based) and, for reference, every 100 steps.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig

from sarexp.config.compose import compose_run_config
from sarexp.tasks.builders import build_datamodule, build_system, build_trainer


class StepTimer(pl.Callback):
    """Wall time of each training step (batch start to batch end)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, *args: Any) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        self.times.append(time.perf_counter() - self._start)


def config(experiment: str, root: Path, steps: int) -> DictConfig:
    return compose_run_config(root, root / "run", [
        f"experiment={experiment}", f"trainer.max_steps={steps}", "trainer.limit_val_batches=0",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"])


def measure(experiment: str, steps: int, saves: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        cfg = config(experiment, root, steps)
        timer = StepTimer()
        trainer = build_trainer(cfg, [timer], [])
        trainer.fit(build_system(cfg), datamodule=build_datamodule(cfg))
        target = root / "checkpoints" / "last.ckpt"
        save_times = []
        for _ in range(saves):
            started = time.perf_counter()
            trainer.save_checkpoint(target, weights_only=False)
            save_times.append(time.perf_counter() - started)
        interval_s = 60.0 * cfg.callbacks.last_checkpoint.train_time_interval
        step = statistics.median(timer.times[1:] or timer.times)
        save = statistics.median(save_times)
        return {"step_s": step, "save_s": save, "size_mb": target.stat().st_size / 1e6, "interval_min": interval_s / 60,
                "share_default": save / (interval_s + save), "share_100_steps": save / (100 * step + save)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--experiments", nargs="+", default=["ssm4sar", "pdm_sar_lowres"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'experiment':<16} {'step s':>8} {'ckpt MB':>8} {'save s':>8} {'interval':>9} {'share':>8} "
          f"{'share@100 steps':>16}")
    for experiment in args.experiments:
        row = measure(experiment, args.steps, args.saves)
        print(f"{experiment:<16} {row['step_s']:>8.3f} {row['size_mb']:>8.2f} {row['save_s']:>8.3f} "
              f"{row['interval_min']:>7.0f} m {100 * row['share_default']:>7.3f}% {100 * row['share_100_steps']:>15.2f}%")


if __name__ == "__main__":
    main()
