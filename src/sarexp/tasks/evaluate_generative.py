"""task=evaluate: judge generated samples against the real data in a trained classifier's feature space.

The data settings come from the sample run's ``.hydra/config.yaml`` beside the samples (command-line overrides
win; see :mod:`sarexp.tasks.source_config`). Reads ``task.samples_path`` (``samples.npz`` from task=sample:
``images`` float32 (N, C, H, W) in [−1, 1], optional ``labels`` int64 (N,)), the real images of ``task.split``
from the configured data module and a feature extractor (:mod:`sarexp.tasks.feature_extractors`). Writes ``evaluation.json`` (flat floats):

- ``fid``, ``precision``, ``recall`` (k = ``task.k`` nearest neighbours) of the samples against the real split;
- ``fid_real_reference``: the FID between real training images and the real split at the same sample
  count — the floor that finite sample sizes put under ``fid``;
- ``class_recognition`` (with labels, and an extractor trained on the data's classes): fraction of samples
  whose predicted class is their label, beside ``class_recognition_chance`` = 1/K and ``real_class_recognition`` on the real split;
- ``semivariogram/{real,generated}/c<channel>/lag<h>`` and ``semivariogram/mean_abs_log_ratio`` (mean over
  lags and channels of |ln γ_generated/γ_real|);

and ``semivariogram.png``, ``samples_vs_real.png`` (also in the configured image loggers, tags
``evaluate/semivariogram`` and ``evaluate/samples_vs_real``). Returns the FID.
"""

import logging
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from sarexp.config.trusted_targets import trusted_targets
from sarexp.errors import ConfigError, DataError
from sarexp.metrics.generative import feature_frechet_distance, precision_recall
from sarexp.metrics.semivariogram import plot_semivariograms, semivariogram
from sarexp.plotting.generative import real_and_generated_grid
from sarexp.rundir import record_run_info, write_json_atomic
from sarexp.tasks.builders import build_datamodule, run_dir, seed_everything
from sarexp.tasks.feature_extractors import extractor_run_config, load_feature_extractor
from sarexp.tasks.figures import TaskFigures, task_figures
from sarexp.tasks.source_config import adopt_samples_config

log = logging.getLogger(__name__)


def load_samples(path: Path, channels: int, image_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Images and (optional) labels of a samples .npz, checked against the data settings."""
    if not path.is_file():
        raise ConfigError(f"task.samples_path={path}: no such file; pass the samples.npz written by task=sample")
    with np.load(path) as archive:
        if "images" not in archive:
            raise DataError(f"{path}: no 'images' array (has {sorted(archive.files)})")
        images = archive["images"].astype(np.float32)
        labels = archive["labels"].astype(np.int64) if "labels" in archive else None
    if images.ndim != 4 or images.shape[1] != channels or images.shape[-2:] != (image_size, image_size):
        raise DataError(
            f"{path}: images of shape {images.shape}, the data gives (N, {channels}, {image_size}, {image_size}); "
            "evaluate with the data settings of the model that generated them (data=…, data.image_size=…)"
        )
    return images, labels


def real_images(cfg: DictConfig, split: str, limit: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Up to ``limit`` images (and labels) of a split of the configured data module, in loader order. The
    training loader shuffles; its order is drawn from the config's `seed` (the global RNG untouched), so every
    call returns the same images whatever was drawn before."""
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup(None)
    loaders = {"train": datamodule.train_dataloader, "val": datamodule.val_dataloader,
               "test": datamodule.test_dataloader}
    if split not in loaders:
        raise ConfigError(f"task.split must be one of {sorted(loaders)}, got {split!r}")
    images, labels = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.get("seed") or 0))
        for batch in loaders[split]():
            images.append(batch["image"].numpy())
            if "label" in batch:
                labels.append(batch["label"].numpy())
            if limit is not None and sum(len(chunk) for chunk in images) >= limit:
                break
    stacked = np.concatenate(images)[:limit]
    return stacked, (np.concatenate(labels)[:limit] if labels else None)


@torch.no_grad()
def extract(
    network: nn.Module, images: np.ndarray, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, D) and logits (N, K) of images, in batches."""
    features, logits = [], []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start : start + batch_size]).to(device)
        features.append(network.features(batch).cpu().double().numpy())
        logits.append(network(batch).cpu().double().numpy())
    return np.concatenate(features), np.concatenate(logits)


def _semivariogram_entries(real: np.ndarray, generated: np.ndarray, max_lag: int, directory: Path,
                           figures: TaskFigures) -> dict[str, float]:
    max_lag = min(max_lag, real.shape[-1] - 1)
    lags, gamma_real = semivariogram(real, max_lag)
    _, gamma_generated = semivariogram(generated, max_lag)
    entries: dict[str, float] = {}
    for name, gamma in (("real", gamma_real), ("generated", gamma_generated)):
        for channel, row in enumerate(gamma):
            entries.update({f"semivariogram/{name}/c{channel}/lag{lag}": float(value) for lag, value in zip(lags, row)})
    ratio = np.abs(np.log(np.maximum(gamma_generated, 1e-12) / np.maximum(gamma_real, 1e-12)))
    entries["semivariogram/mean_abs_log_ratio"] = float(ratio.mean())
    channels = [f"channel {channel}" for channel in range(real.shape[1])]
    figure = plot_semivariograms(lags, {"real": gamma_real, "generated": gamma_generated}, channels)
    figures.save("evaluate/semivariogram", figure, directory / "semivariogram.png", dpi=120)
    plt.close(figure)
    return entries


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def evaluate_generative(
    cfg: DictConfig,
    samples_path: str | None = None,
    extractor_checkpoint: str | None = None,
    inception_weights: str | None = None,
    split: str = "test",
    max_real: int | None = None,
    batch_size: int = 128,
    k: int = 3,
    semivariogram_max_lag: int = 8,
    device: str = "auto",
) -> float:
    """Write evaluation.json and the plots into the run dir; return the FID."""
    if not samples_path:
        raise ConfigError("task=evaluate needs task.samples_path=<run dir of task=sample>/samples.npz")
    adopt_samples_config(cfg, Path(samples_path))
    trusted = trusted_targets(cfg)
    if extractor_checkpoint:
        extractor_run_config(Path(extractor_checkpoint), trusted)  # checked before the real images are read
    directory = run_dir(cfg)
    record_run_info(directory, seed_everything(cfg))
    generated, labels = load_samples(Path(samples_path), cfg.data.channels, cfg.data.image_size)
    real, real_labels = real_images(cfg, split, max_real)
    network = load_feature_extractor(extractor_checkpoint, inception_weights, trusted).to(_device(device))
    target = next(network.parameters()).device
    real_features, real_logits = extract(network, real, batch_size, target)
    generated_features, generated_logits = extract(network, generated, batch_size, target)
    precision, recall = precision_recall(real_features, generated_features, k=k)
    results: dict[str, Any] = {
        "fid": feature_frechet_distance(real_features, generated_features),
        "precision": precision,
        "recall": recall,
        "num_generated": float(len(generated)),
        "num_real": float(len(real)),
    }
    if split != "train":
        reference, _ = real_images(cfg, "train", len(real))
        reference_features, _ = extract(network, reference, batch_size, target)
        results["fid_real_reference"] = feature_frechet_distance(reference_features, real_features)
    if labels is not None and generated_logits.shape[1] == cfg.data.num_classes:
        num_classes = generated_logits.shape[1]
        results["class_recognition"] = float((generated_logits.argmax(axis=1) == labels).mean())
        results["class_recognition_chance"] = 1.0 / num_classes
        if real_labels is not None:
            results["real_class_recognition"] = float((real_logits.argmax(axis=1) == real_labels).mean())
    with task_figures(cfg) as figures:
        results.update(_semivariogram_entries(real, generated, semivariogram_max_lag, directory, figures))
        figure = real_and_generated_grid(real, generated)
        figures.save("evaluate/samples_vs_real", figure, directory / "samples_vs_real.png", dpi=120)
        plt.close(figure)
    write_json_atomic(directory / "evaluation.json", results)
    log.info("FID %.4g, precision %.3f, recall %.3f%s", results["fid"], precision, recall,
             f", class recognition {results['class_recognition']:.3f}" if "class_recognition" in results else "")
    return float(results["fid"])
