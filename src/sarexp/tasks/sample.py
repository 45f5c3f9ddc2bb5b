"""task=sample: draw images from a trained diffusion model (EMA weights by default) with the configured sampler.

Writes to the run directory `samples.npz` (`images` float32 (N, C, H, W) in the data scale [−1, 1], `labels`
int64 (N,) for class-conditional models), the same as `samples.h5`, and a PNG grid `samples.png` (also in the
configured image loggers, tag ``sample/grid``); prints the sampling speed. Super-resolution models are conditioned on the low-resolution images of an .npz file in
that layout (`task.low_res_path`, e.g. the samples of a low-resolution model), whose labels are reused.
"""

import logging
import time
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm.auto import tqdm

from sarexp.diffusion.samplers import Sampler
from sarexp.errors import ConfigError, DataError
from sarexp.plotting.image_grid import image_grid
from sarexp.rundir import write_metrics
from sarexp.systems.diffusion import model_function
from sarexp.tasks.figures import task_figures
from sarexp.tasks.generative import start_generative_run, write_hdf5_atomic, write_npz_atomic
from sarexp.tasks.source_config import source_checkpoint

log = logging.getLogger(__name__)


def sample(
    cfg: DictConfig,
    num_samples: int = 16,
    batch_size: int = 16,
    class_label: int | None = None,
    use_ema: bool = True,
    low_res_path: str | None = None,
    grid_columns: int = 8,
    hdf5: bool = True,
    progress: bool = True,
    device: str = "auto",
) -> float:
    """Returns the sampling speed in samples per second.

    class_label: the class of every sample of a class-conditional model (null: classes drawn uniformly).
    """
    checkpoint = source_checkpoint(cfg, "sample")
    if num_samples < 1 or batch_size < 1:
        raise ConfigError("task.num_samples and task.batch_size must be >= 1")
    directory, seed, system, net, target = start_generative_run(cfg, checkpoint, use_ema, device)
    sampler: Sampler = instantiate(cfg.sampler)
    conditions = _conditions(net, num_samples, class_label, low_res_path, seed)
    count = len(next(iter(conditions.values()))) if conditions else num_samples

    generator = torch.Generator().manual_seed(seed)
    shape = (net.in_channels, net.image_size, net.image_size)
    batches, nfe = [], 0
    started = time.perf_counter()
    for start in tqdm(range(0, count, batch_size), desc="sampling batches", disable=not progress):
        size = min(batch_size, count - start)
        noise = torch.randn((size, *shape), generator=generator).to(target)
        conditioning = {key: value[start : start + size].to(target) for key, value in conditions.items()}
        images = sampler.sample(system.diffusion, model_function(net, conditioning), noise, progress=progress)
        batches.append(images.clamp(-1.0, 1.0).float().cpu().numpy())
        nfe = sampler.last_nfe
    seconds = time.perf_counter() - started

    images = np.concatenate(batches).astype(np.float32)
    arrays = {"images": images}
    if "label" in conditions:
        arrays["labels"] = conditions["label"].numpy().astype(np.int64)
    write_npz_atomic(directory / "samples.npz", **arrays)
    if hdf5:
        write_hdf5_atomic(directory / "samples.h5", **arrays)
    with task_figures(cfg) as figures:
        figures.save("sample/grid", image_grid(images, grid_columns), directory / "samples.png")
    speed = count / seconds
    write_metrics(
        directory,
        {"sample/num_samples": count, "sample/seconds": seconds, "sample/samples_per_second": speed,
         "sample/nfe_per_batch": nfe},
    )
    log.info("%d samples in %.1f s (%.3g samples/s, %d network evaluations per batch) → %s",
             count, seconds, speed, nfe, directory / "samples.npz")
    return speed


def _conditions(
    net: torch.nn.Module, num_samples: int, class_label: int | None, low_res_path: str | None, seed: int
) -> dict[str, torch.Tensor]:
    """Per-sample conditioning inputs the network needs: `label` and/or `low_res`."""
    needs = set(getattr(net, "conditioning", ()))
    conditions: dict[str, torch.Tensor] = {}
    stored_labels = None
    if "low_res" in needs:
        low_res, stored_labels = _read_low_res(low_res_path)
        if len(low_res) < num_samples:
            log.info("task.low_res_path holds %d images: drawing %d samples", len(low_res), len(low_res))
        conditions["low_res"] = low_res[:num_samples]
        num_samples = len(conditions["low_res"])
    elif low_res_path is not None:
        raise ConfigError("task.low_res_path is set but the model is not a super-resolution model")
    if "label" in needs:
        conditions["label"] = _labels(net.num_classes, num_samples, class_label, stored_labels, seed)
    elif class_label is not None:
        raise ConfigError("task.class_label is set but the model is not class-conditional (model.num_classes=0)")
    return conditions


def _labels(
    num_classes: int, count: int, class_label: int | None, stored: torch.Tensor | None, seed: int
) -> torch.Tensor:
    if class_label is not None:
        if not 0 <= class_label < num_classes:
            raise ConfigError(f"task.class_label={class_label} is not a class index in [0, {num_classes})")
        return torch.full((count,), class_label, dtype=torch.long)
    if stored is not None:
        return stored[:count]
    return torch.randint(0, num_classes, (count,), generator=torch.Generator().manual_seed(seed + 1))


def _read_low_res(path: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    if path is None:
        raise ConfigError(
            "a super-resolution model needs task.low_res_path=FILE.npz (e.g. the samples.npz of a low-resolution model)"
        )
    file = Path(path)
    if not file.is_file():
        raise DataError(f"task.low_res_path={file}: no such file; pass an .npz with `images` (N, C, h, w)")
    with np.load(file) as data:
        if "images" not in data or data["images"].ndim != 4:
            raise DataError(f"{file}: needs an `images` array of shape (N, C, h, w) in [-1, 1]")
        images = torch.from_numpy(data["images"].astype(np.float32))
        labels = torch.from_numpy(data["labels"].astype(np.int64)) if "labels" in data else None
    return images, labels
