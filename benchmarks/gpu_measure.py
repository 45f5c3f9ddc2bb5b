"""Measurement helpers of benchmarks/gpu_suite.py (and benchmarks/ddp_step.py): compose a run's config, time
training steps on a fixed real batch, sample GPU utilisation, time a callable."""

from __future__ import annotations

import importlib.util
import statistics
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from s4d_kernel import median_ms

if TYPE_CHECKING:
    from gpu_suite import Scale

Row = dict[str, Any]


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class BusySampler:
    """GPU utilisation during a measurement: NVML samples when available, else CUDA-event stream coverage."""

    def __init__(self, device: str) -> None:
        self.device, self.samples, self.stream_ms = device, [], 0.0
        self.nvml = device == "cuda" and importlib.util.find_spec("pynvml") is not None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True) if self.nvml else None

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            self.samples.append(torch.cuda.utilization())

    def start(self) -> None:
        if self._thread is not None:
            self._thread.start()

    def stop(self, wall_s: float) -> str:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            return f"{statistics.fmean(self.samples):.0f}" if self.samples else "n/a"
        if self.device == "cuda" and wall_s > 0:
            return f"≤{min(100.0, 100 * self.stream_ms / 1e3 / wall_s):.0f}"
        return "n/a"


def train_rate(overrides: list[str], scale: Scale, batch_size: int) -> Row:
    """Build data module and system from the config; time the loader alone, then training steps."""
    from sarexp.tasks.builders import build_datamodule, build_system

    cfg = compose(scale, [*overrides, f"data.batch_size={batch_size}"])
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    start, batches, items = time.perf_counter(), 0, 0
    for batch in loader:
        items, batches = items + batch_items(batch), batches + 1
        first = batch if batches == 1 else first
        if batches >= scale.loader_batches:
            break
    loader_rate = items / (time.perf_counter() - start)

    timer = StepTimer(scale)
    fixed = FixedBatch(datamodule, first, scale.warmup + scale.steps)
    # one epoch over exactly warmup + steps batches (max_steps would count a GAN's two optimizer steps per batch)
    trainer = pl.Trainer(accelerator=scale.device, devices=1, precision=cfg.trainer.precision,
                         max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0, callbacks=[timer])
    if scale.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(build_system(cfg), datamodule=fixed)
    device_rate = batch_items(first) * scale.steps / timer.wall_s
    return {"batch": batch_items(first), "ms/step": 1e3 * timer.wall_s / scale.steps, "items/s": device_rate,
            "peak GiB": torch.cuda.max_memory_allocated() / 2**30 if scale.device == "cuda" else None,
            "GPU busy %": timer.busy, "loader items/s": loader_rate, "loader/device": loader_rate / device_rate}


def batch_items(batch: Any) -> int:
    tensors = batch.values() if isinstance(batch, dict) else batch
    return next(len(value) for value in tensors if isinstance(value, torch.Tensor))


class FixedBatch(pl.LightningDataModule):
    """A data module whose loader repeats one real batch (the real module's device-side transform kept)."""

    def __init__(self, source: pl.LightningDataModule, batch: Any, steps: int) -> None:
        super().__init__()
        self.source, self.batch, self.steps = source, batch, steps

    def train_dataloader(self) -> DataLoader:
        return DataLoader([self.batch] * self.steps, batch_size=None)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.source.on_after_batch_transfer(batch, dataloader_idx)


class StepTimer(pl.Callback):
    """Wall time of the steps after warm-up (device synchronised), and GPU busy during them."""

    def __init__(self, scale: Scale) -> None:
        self.scale, self.wall_s, self.busy, self._sampler = scale, 0.0, "n/a", BusySampler(scale.device)
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    def on_train_batch_start(self, trainer: pl.Trainer, module: Any, batch: Any, index: int) -> None:
        if index == self.scale.warmup:
            synchronize(self.scale.device)
            self._start = time.perf_counter()
            self._sampler.start()
        if index >= self.scale.warmup and self.scale.device == "cuda":
            self._begin = torch.cuda.Event(enable_timing=True)
            self._begin.record()

    def on_train_batch_end(self, trainer: pl.Trainer, module: Any, outputs: Any, batch: Any, index: int) -> None:
        if index < self.scale.warmup:
            return
        if self.scale.device == "cuda":  # read after the last step: no synchronisation between steps
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events.append((self._begin, end))
        if index == self.scale.warmup + self.scale.steps - 1:
            synchronize(self.scale.device)
            self.wall_s = time.perf_counter() - self._start
            self._sampler.stream_ms = sum(begin.elapsed_time(end) for begin, end in self._events)
            self.busy = self._sampler.stop(self.wall_s)


def compose(scale: Scale, overrides: list[str], run_dir: Path | None = None) -> Any:
    from sarexp.config.compose import compose_run_config

    return compose_run_config(scale.workdir, run_dir or scale.workdir / "run", overrides)


def timed(step: Callable[[], Any], device: str, repeats: int) -> float:
    """Median seconds of `step` after one warm-up call."""
    return median_ms(step, repeats, warmup=1, device=torch.device(device)) / 1e3


def largest_fitting(batch: int, measure: Callable[[int], Row]) -> Row:
    """`measure(batch)`, halving the batch on CUDA out-of-memory (the seed's size, or the largest that fits)."""
    while True:
        try:
            return measure(batch)
        except torch.cuda.OutOfMemoryError:
            if batch == 1:
                raise
            torch.cuda.empty_cache()
            batch //= 2
