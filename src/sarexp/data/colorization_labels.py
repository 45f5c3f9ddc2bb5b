"""The colorization pairs as a classification data set: the optical image as `image` and its season (or
region × season) index as `label`, for the classifier that judges colorizations (FID features, season
recognition; experiment=colorization_season_classifier)."""

from typing import Any, Literal

import torch

from sarexp.data.colorization import ColorizationDataModule
from sarexp.errors import ConfigError


class ColorizationLabelsDataModule(ColorizationDataModule):
    """ColorizationDataModule whose batches also carry `image` (= optical) and `label` (class index in
    data.seasons order, or region-major over data.regions × data.seasons)."""

    def __init__(self, label: Literal["season", "region_season"] = "season", num_classes: int | None = None,
                 channels: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if label not in ("season", "region_season"):
            raise ConfigError(f"data.label must be season or region_season, got {label!r}")
        self.label = label
        self.classes = list(self.seasons) if label == "season" else [
            f"{region}/{season}" for region in self.regions for season in self.seasons]
        if num_classes is not None and num_classes != len(self.classes):
            raise ConfigError(f"data.num_classes={num_classes} but data.label={label} has {len(self.classes)} classes")
        if channels != 3:
            raise ConfigError("data.channels must be 3 (the optical images)")
        self.num_classes, self.channels = len(self.classes), channels

    def class_index(self, region: str, season: str) -> int:
        return self.classes.index(season if self.label == "season" else f"{region}/{season}")

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        batch = super().on_after_batch_transfer(batch, dataloader_idx)
        labels = [self.class_index(r, s) for r, s in zip(batch["region"], batch["season"], strict=True)]
        return {**batch, "image": batch["optical"], "label": torch.tensor(labels, device=batch["optical"].device)}
