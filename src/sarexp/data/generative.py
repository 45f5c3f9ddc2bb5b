"""What image data modules for generative models share: items, resizing, splits, synthetic generation.

Every dataset here yields the item the diffusion systems and the generative evaluation read:

- ``image`` float32 (C, H, W) in [−1, 1] (see :mod:`sarexp.data.scaling` for each kind of data),
- ``label`` int64 scalar, the class index, when the dataset has classes,
- ``low_res`` float32 (C, h, w) when ``low_res_size`` is set: the image averaged over blocks (area
  interpolation), the conditioning input of super-resolution models.

Splits are ``train``, ``val`` and ``test``; a dataset without a ``test`` split is tested on ``val``.
"""

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from sarexp.data.resumable import split_loader
from sarexp.data.scaling import ImageScaling, ScalingMode
from sarexp.data.synthetic.staging import is_missing_or_empty
from sarexp.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def fit_size(image: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop (C, H, W) to a square and resize it to ``size`` × ``size`` (area when shrinking)."""
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[..., top : top + side, left : left + side]
    if side == size:
        return square
    mode = "area" if side > size else "bicubic"
    options = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(square[None], size=(size, size), mode=mode, **options)[0].clamp(-1.0, 1.0)


def make_item(
    image: np.ndarray, label: int | None, image_size: int, low_res_size: int | None
) -> dict[str, torch.Tensor]:
    """The batch item for a scaled (C, H, W) image."""
    tensor = fit_size(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)), image_size)
    item = {"image": tensor}
    if label is not None:
        item["label"] = torch.tensor(label, dtype=torch.long)
    if low_res_size is not None:
        item["low_res"] = F.interpolate(tensor[None], size=(low_res_size, low_res_size), mode="area")[0]
    return item


class ImageDataModule(LightningDataModule, ABC):
    """Train/val/test loaders of images under ``root`` in [−1, 1], generated there when synthetic.

    Subclasses know one storage format: they say whether a split exists and build its dataset.
    """

    layout: str = ""  # what the root must hold, for error messages

    def __init__(
        self,
        root: str,
        synthetic: bool = True,
        generator: Callable[..., Any] | None = None,
        image_size: int = 32,
        channels: int = 1,
        num_classes: int = 0,
        scaling: ScalingMode = "unit",
        value_range: Sequence[float] | None = None,
        low_res_size: int | None = None,
        batch_size: int = 16,
        val_batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__()
        for key, value in {"image_size": image_size, "channels": channels, "batch_size": batch_size,
                           "val_batch_size": val_batch_size}.items():
            if value < 1:
                raise ConfigError(f"data.{key} must be a positive integer, got {value}")
        if num_classes < 0 or num_workers < 0:
            raise ConfigError("data.num_classes and data.num_workers must be >= 0")
        if low_res_size is not None and not 1 <= low_res_size < image_size:
            raise ConfigError(f"data.low_res_size must be between 1 and data.image_size-1, got {low_res_size}")
        self.root = Path(root)
        self.synthetic = synthetic
        self.generator = generator
        self.image_size = image_size
        self.channels = channels
        self.num_classes = num_classes
        self.scaling = ImageScaling(scaling, value_range)
        self.low_res_size = low_res_size
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.datasets: dict[str, Dataset] = {}

    @abstractmethod
    def split_exists(self, split: str) -> bool:
        """Whether ``split`` is present under ``root``."""

    @abstractmethod
    def build_dataset(self, split: str) -> Dataset:
        """The dataset of one split; it must expose ``class_names`` (empty without classes)."""

    def prepare_data(self) -> None:
        """Generate the synthetic dataset into an empty root (safe when processes race), then check it."""
        if is_missing_or_empty(self.root) and self.synthetic:
            if self.generator is None:
                raise ConfigError("data.synthetic=true needs data.generator (a synthetic dataset writer)")
            log.info("generating a synthetic dataset in %s", self.root)
            try:
                self.generator(self.root)
            except FileExistsError:
                pass  # another process published a complete dataset first; use it
        if is_missing_or_empty(self.root):
            raise DataError(
                f"{self.root}: dataset directory is missing or empty; set data.root to a directory holding "
                f"{self.layout}, or set data.synthetic=true to generate one"
            )
        for split in ("train", "val"):
            if not self.split_exists(split):
                raise DataError(f"{self.root}: no '{split}' split; a dataset holds {self.layout}")

    def _dataset(self, split: str) -> Dataset:
        """The split's dataset, built once and checked against data.channels and data.num_classes."""
        if split not in self.datasets:
            name = split if split != "test" or self.split_exists("test") else "val"
            dataset = self.build_dataset(name)
            classes = list(getattr(dataset, "class_names", []))
            if self.num_classes and classes and len(classes) != self.num_classes:
                raise DataError(
                    f"{self.root}: split '{name}' has {len(classes)} classes {classes}, "
                    f"data.num_classes={self.num_classes}; set data.num_classes={len(classes)}"
                )
            if len(dataset) == 0:
                raise DataError(f"{self.root}: split '{name}' holds no images")
            channels = dataset[0]["image"].shape[0]
            if channels != self.channels:
                raise DataError(
                    f"{self.root}: split '{name}' gives {channels}-channel images after data.scaling="
                    f"{self.scaling.mode}, data.channels={self.channels}; set data.channels={channels}"
                )
            self.datasets[split] = dataset
        return self.datasets[split]

    @property
    def class_names(self) -> list[str]:
        """Class names in label order (from the training split); empty for unlabelled data."""
        return list(getattr(self._dataset("train"), "class_names", []))

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None):
            self._dataset("train")
        if stage in ("fit", "validate", None):
            self._dataset("val")
        if stage in ("test", None):
            self._dataset("test")

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        return split_loader(self._dataset(split), batch_size=batch_size, train=shuffle, num_workers=self.num_workers,
                            pin_memory=self.pin_memory, persistent_workers=self.persistent_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.val_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.val_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", self.val_batch_size, shuffle=False)

