"""Shared machinery of benchmarks/parity.py: settings, composing an experiment as `task=train` does, alternating
timed rounds with per-column peak memory, importing a reference checkout from a path, and the tables."""

import ctypes
import importlib.util
import os
import statistics
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

Row = dict[str, Any]


@dataclass
class Settings:
    """One parity run: device, timed steps per round, warm-up steps dropped per round, rounds, scratch dir,
    the reference checkouts (`--reference NAME=PATH`) and whether this is the cheap smoke run."""

    device: str
    steps: int
    warmup: int
    rounds: int
    workdir: Path
    references: dict[str, Path] = field(default_factory=dict)
    smoke: bool = False
    workers: tuple[int, ...] = (0, 2)

    def reference(self, name: str) -> Path | None:
        path = self.references.get(name)
        return path if path is not None and path.is_dir() else None


class Skip(Exception):
    """A column that cannot run here (no checkout, a dependency missing): the table says why."""


# --- composing an experiment -------------------------------------------------------------------------


def compose(settings: Settings, overrides: list[str]) -> Any:
    """The experiment's config as `python -m sarexp` composes it, run and data dirs under the scratch dir."""
    from sarexp.config.compose import compose_run_config

    return compose_run_config(settings.workdir, settings.workdir / "run", overrides)


def first_batch(datamodule: Any) -> Any:
    """A real training batch of the data module, through its device-side transform in evaluation mode
    (normalisation, resizing; no random augmentation: that is data work, timed in the data section)."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    return datamodule.on_after_batch_transfer(batch, 0)


def to_device(batch: Any, device: str) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# --- memory ------------------------------------------------------------------------------------------


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakMemory:
    """Peak memory while a column runs: RSS sampled every 2 ms on a CPU (freed heap is handed back to the
    system first, so each column starts from what is really in use), allocated memory on CUDA."""

    def __init__(self, device: str) -> None:
        self.device, self.peak = device, 0.0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        _malloc_trim()
        self.peak = rss_mib()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc: Any) -> None:
        if self.device.startswith("cuda"):
            self.peak = torch.cuda.max_memory_allocated() / 2**20
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: peaks may then include freed heap
        pass


# --- alternating rounds --------------------------------------------------------------------------------


@dataclass
class Column:
    """One implementation of a measured operation: `run(n)` performs n units (training steps, sampling calls,
    loader passes) and returns n durations in seconds; `items` is how many items one unit processes."""

    name: str
    run: Callable[[int], list[float]] | None  # None: skipped, `note` says why
    items: int = 1
    note: str = ""


def optional(name: str, make: Callable[[], Column]) -> Column:
    """`make()`, or a skipped column whose note says why (no checkout, a dependency missing)."""
    try:
        return make()
    except Skip as reason:
        return Column(name, None, note=f"skipped: {reason}")


def alternate(columns: list[Column], settings: Settings, steps: int | None = None,
              warmup: int | None = None) -> dict[str, Row]:
    """Run the columns in turn, `settings.rounds` times (the order rotates each round), so that a change of
    load or clock hits all of them; per column: median and mean ms per unit after the warm-up, peak MiB."""
    steps = settings.steps if steps is None else steps
    warmup = settings.warmup if warmup is None else warmup
    skipped = {column.name: {"note": column.note} for column in columns if column.run is None}
    columns = [column for column in columns if column.run is not None]
    kept: dict[str, list[float]] = {column.name: [] for column in columns}
    peaks: dict[str, float] = {column.name: 0.0 for column in columns}
    for round_index in range(settings.rounds):
        shift = round_index % len(columns)
        for column in columns[shift:] + columns[:shift]:
            with PeakMemory(settings.device) as memory:
                durations = column.run(warmup + steps)
            kept[column.name].extend(durations[warmup:])
            peaks[column.name] = max(peaks[column.name], memory.peak)
    return {column.name: {"ms": 1e3 * statistics.median(kept[column.name]),
                          "mean ms": 1e3 * statistics.fmean(kept[column.name]),
                          "items/s": column.items / statistics.median(kept[column.name]),
                          "peak MiB": peaks[column.name], "note": column.note} for column in columns} | skipped


def timed_loop(step: Callable[[], Any], device: str) -> Callable[[int], list[float]]:
    """`run(n)` for a plain loop: n calls of `step`, each timed with the device synchronised."""
    def run(count: int) -> list[float]:
        durations = []
        for _ in range(count):
            start = time.perf_counter()
            step()
            synchronize(device)
            durations.append(time.perf_counter() - start)
        return durations
    return run


# --- reference checkouts -------------------------------------------------------------------------------


@contextmanager
def reference_imports(root: Path, shims: dict[str, types.ModuleType] | None = None) -> Iterator[None]:
    """Import a reference checkout's modules from `root` (first on sys.path), with shim modules for
    dependencies it needs but this machine lacks (only those not importable). On exit the checkout's own
    modules leave sys.modules (the imported objects keep working), so references with clashing top-level
    names (utils, util, architecture) do not see each other's."""
    installed = []
    for name, module in (shims or {}).items():  # a package before its submodules
        parent = name.split(".")[0]
        if name not in sys.modules and (parent in installed or importlib.util.find_spec(parent) is None):
            sys.modules[name] = module
            installed.append(name)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for name in [name for name, module in sys.modules.items()
                     if str(getattr(module, "__file__", "") or "").startswith(str(root))]:
            del sys.modules[name]
        for name in installed:
            sys.modules.pop(name, None)


def shim(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


# --- tables --------------------------------------------------------------------------------------------


def cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"
    return str(value)


def markdown(columns: tuple[str, ...], rows: list[Row]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)
