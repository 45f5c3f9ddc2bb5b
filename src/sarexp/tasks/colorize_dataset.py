"""task=colorize task.mode=dataset: the first task.num_samples validation pairs colorized with their own
prompts, written as SAR | generated | ground truth panels (sample_NNN.png, panels.png), and scored:

- ``psnr``, ``ssim``, ``sam`` of the generated images against the ground truth;
- with task.baselines: the same scores of ``baseline_mean/…`` (the mean training optical image of the pair's
  (region, season): what the prompt alone predicts) and of ``unguided/…`` (the model at guidance scale 0: the
  prompt unused) and of ``vae_reconstruction/…`` (the ground truth through the frozen VAE: the ceiling of
  any colorization in its latent space);
- ``fid`` (and ``unguided/fid``) against the real optical images of those pairs, in the features of a
  colorization_season_classifier checkpoint (task.extractor_checkpoint) or of Inception weights
  (task.inception_weights);
- ``season_recognition`` (and ``unguided/…``, ``real_season_recognition``, ``season_recognition_chance``) with
  task.season_classifier_checkpoint: how often a classifier of real optical patches names the prompted season;
  with task.baselines also ``other_season/season_recognition``: each SAR prompted with a season not its own
  (the SAR carries no season, so only the prompt can make the classifier name it).
"""

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from sarexp.config.trusted_targets import TrustedTargets, trusted_targets
from sarexp.errors import ConfigError, DataError
from sarexp.metrics.colorization import group_means, image_scores
from sarexp.metrics.generative import feature_frechet_distance
from sarexp.plotting.image_grid import image_grid
from sarexp.tasks.builders import build_datamodule
from sarexp.tasks.colorize_output import write_png_atomic
from sarexp.tasks.feature_extractors import (EXTRACTOR_KEY, extractor_from_checkpoint, extractor_run_config,
                                             load_feature_extractor)

log = logging.getLogger(__name__)
Colorizer = Callable[..., torch.Tensor]
SEASON_KEY = "task.season_classifier_checkpoint"


def _pairs(datamodule: object, split: str, limit: int | None) -> dict[str, list | torch.Tensor]:
    dataset = datamodule.datasets[split]
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count == 0:
        raise DataError(f"the {split} split of data.root is empty; nothing to colorize")
    items = [dataset[index] for index in range(count)]
    return {"sar": torch.stack([item["sar"] for item in items]),
            "optical": torch.stack([item["optical"] for item in items]),
            "prompt": [item["prompt"] for item in items],
            "group": [f"{item['region']}/{item['season']}" for item in items],
            "season": [item["season"] for item in items]}


@torch.no_grad()
def _apply(network: nn.Module, images: torch.Tensor, device: torch.device, features: bool) -> torch.Tensor:
    network = network.to(device)
    out = [(network.features if features else network)(images[i : i + 64].to(device)).float().cpu()
           for i in range(0, len(images), 64)]
    return torch.cat(out)


def check_classifier_runs(cfg: DictConfig, extractor_checkpoint: str | None,
                          season_classifier_checkpoint: str | None) -> TrustedTargets:
    """Check the run configs of the classifiers before anything is colorized (their `_target_`s on the allowlist);
    the allowlist, for loading them afterwards."""
    trusted = trusted_targets(cfg)
    for key, checkpoint in ((EXTRACTOR_KEY, extractor_checkpoint), (SEASON_KEY, season_classifier_checkpoint)):
        if checkpoint:
            extractor_run_config(Path(checkpoint), trusted, key)
    return trusted


def colorize_dataset(cfg: DictConfig, run: Colorizer, reconstruct: Colorizer, output_dir: Path, num_samples: int, baselines: bool,
                     extractor_checkpoint: str | None, inception_weights: str | None,
                     season_classifier_checkpoint: str | None, device: torch.device,
                     trusted: TrustedTargets | None = None) -> dict[str, float]:
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup(None)
    pairs = _pairs(datamodule, "validation", num_samples)
    sar, optical = pairs["sar"], pairs["optical"]
    generated = {"": run(sar, pairs["prompt"])}
    metrics = dict(image_scores(generated[""], optical))
    if baselines:
        generated["unguided/"] = run(sar, pairs["prompt"], scale=0.0)
        metrics.update({f"unguided/{k}": v for k, v in image_scores(generated["unguided/"], optical).items()})
        metrics.update({f"vae_reconstruction/{k}": v for k, v in image_scores(reconstruct(optical), optical).items()})
        train = _pairs(datamodule, "train", None)
        means = group_means(train["optical"], train["group"])
        missing = sorted(set(pairs["group"]) - set(means))
        if missing:
            log.warning("no training images of %s: the mean baseline skips those pairs", ", ".join(missing))
        keep = [i for i, group in enumerate(pairs["group"]) if group in means]
        if keep:
            mean_images = torch.stack([means[pairs["group"][i]] for i in keep])
            metrics.update({f"baseline_mean/{k}": v for k, v in image_scores(mean_images, optical[keep]).items()})
    if extractor_checkpoint or inception_weights:
        extractor = load_feature_extractor(extractor_checkpoint, inception_weights, trusted)
        real = _apply(extractor, optical, device, features=True).numpy()
        for prefix, images in generated.items():
            metrics[f"{prefix}fid"] = feature_frechet_distance(real, _apply(extractor, images, device, True).numpy())
    if season_classifier_checkpoint:
        names = list(cfg.data.seasons)
        metrics.update(_season_recognition(season_classifier_checkpoint, generated, optical, pairs["season"],
                                           names, device, trusted))
        if baselines and len(names) > 1:
            # steering: each SAR prompted with a season other than its own (rotated through the other ones)
            other = [names[(names.index(season) + 1 + i % (len(names) - 1)) % len(names)]
                     for i, season in enumerate(pairs["season"])]
            prompts = [str(cfg.data.prompt_template).format(region=group.split("/")[0], season=season)
                       for group, season in zip(pairs["group"], other)]
            steered = {"other_season/": run(sar, prompts)}
            scores = _season_recognition(season_classifier_checkpoint, steered, optical, other, names, device, trusted)
            metrics["other_season/season_recognition"] = scores["other_season/season_recognition"]
    _write_panels(output_dir, sar, generated[""], optical)
    return metrics


def _season_recognition(checkpoint: str, generated: dict[str, torch.Tensor], optical: torch.Tensor,
                        seasons: list[str], names: list[str], device: torch.device,
                        trusted: TrustedTargets | None) -> dict[str, float]:
    classifier = extractor_from_checkpoint(Path(checkpoint), trusted, SEASON_KEY)
    if getattr(getattr(classifier, "head", None), "out_features", len(names)) != len(names):
        raise ConfigError(f"task.season_classifier_checkpoint={checkpoint} does not classify the {len(names)} "
                          f"data.seasons; train experiment=colorization_season_classifier with data.label=season")
    truth = torch.tensor([names.index(season) for season in seasons])
    scores = {"season_recognition_chance": 1.0 / len(names),
              "real_season_recognition": float((_apply(classifier, optical, device, False).argmax(1) == truth)
                                               .float().mean())}
    for prefix, images in generated.items():
        predicted = _apply(classifier, images, device, False).argmax(1)
        scores[f"{prefix}season_recognition"] = float((predicted == truth).float().mean())
    return scores


def _write_panels(output_dir: Path, sar: torch.Tensor, generated: torch.Tensor, optical: torch.Tensor) -> None:
    """sample_NNN.png (SAR | generated | ground truth) and panels.png with one such row per pair."""
    rows = torch.stack([sar.expand(-1, 3, -1, -1), generated, optical], dim=1).numpy()  # (N, 3, C, H, W)
    for index, row in enumerate(rows):
        write_png_atomic(output_dir / f"sample_{index:03d}.png", image_grid(row, columns=3), tiled=True)
    write_png_atomic(output_dir / "panels.png", image_grid(rows.reshape(-1, *rows.shape[2:]), columns=3), tiled=True)
    log.info("%d panels → %s", len(rows), output_dir)
