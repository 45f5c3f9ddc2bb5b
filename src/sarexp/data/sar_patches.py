"""Shared machinery of the dual-polarisation (VH, VV) patch datasets: batch transform and data module base.

Datasets return raw backscatter in dB at the file's size (``image_db``) and a float32 ``label``. Resizing,
flips and normalisation run on the whole batch after it reached the device
(:meth:`SARPatchDataModule.on_after_batch_transfer`, the torchgeo habit), so a batch leaves the data module as

- ``image``: float32 (B, [T,] 2, S, S), (dB − mean) / std per channel, channel order VH, VV,
- ``image_db``: float32, the same pixels in dB (resized and flipped identically): what the
  polarisation-aware weights are computed from,
- ``label``: float32 multi-hot (B, C) or binary (B,).

Resizing is bilinear (align_corners=False, no antialiasing: torchvision's ``Resize`` on tensors for an
upscale such as 120 → 128). Bilinear interpolation is a convex combination of pixels, so resizing before or
after the per-channel affine normalisation gives the same ``image``; the upstream code normalises after
resizing. Flips (horizontal and vertical, each with probability 0.5 per sample) happen in training only and
act on all dates of a multi-temporal sample alike.
"""

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from sarexp.data.config_values import check_positive, plain
from sarexp.data.resumable import split_loader
from sarexp.data.synthetic.staging import is_missing_or_empty
from sarexp.errors import ConfigError, DataError

SPLITS = ("train", "validation", "test")


class PatchBatchTransform:
    """Resize, flip (training) and normalise a batch of dB patches; see the module docstring."""

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float], flip: bool = True) -> None:
        if len(mean) != 2 or len(std) != 2:
            raise ConfigError(f"data.mean and data.std need one value per channel (VH, VV), got {mean}, {std}")
        if any(value <= 0 for value in std):
            raise ConfigError(f"data.std must be positive, got {list(std)}")
        self.image_size = image_size
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)
        self.flip = flip

    def resize(self, image_db: torch.Tensor) -> torch.Tensor:
        """(…, C, H, W) → (…, C, S, S) by bilinear interpolation; unchanged when already S × S."""
        if image_db.shape[-2:] == (self.image_size, self.image_size):
            return image_db
        lead = image_db.shape[:-2]
        flat = image_db.reshape(-1, *image_db.shape[-3:])
        size = (self.image_size, self.image_size)
        resized = F.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=False)
        return resized.reshape(*lead, *size)

    @staticmethod
    def random_flips(image_db: torch.Tensor) -> torch.Tensor:
        """Flip each sample (dim 0) horizontally and vertically, each with probability 0.5."""
        batch = image_db.shape[0]
        shape = (batch,) + (1,) * (image_db.dim() - 1)
        horizontal = torch.rand(batch, device=image_db.device).reshape(shape) < 0.5
        vertical = torch.rand(batch, device=image_db.device).reshape(shape) < 0.5
        image_db = torch.where(horizontal, image_db.flip(-1), image_db)
        return torch.where(vertical, image_db.flip(-2), image_db)

    def normalise(self, image_db: torch.Tensor) -> torch.Tensor:
        """(dB − mean) / std over the channel dimension (-3)."""
        mean = self.mean.to(image_db.device).reshape(2, 1, 1)
        std = self.std.to(image_db.device).reshape(2, 1, 1)
        return (image_db - mean) / std

    def __call__(self, batch: dict[str, torch.Tensor], training: bool) -> dict[str, torch.Tensor]:
        image_db = self.resize(batch["image_db"].float())
        if training and self.flip:
            image_db = self.random_flips(image_db)
        return {**batch, "image": self.normalise(image_db), "image_db": image_db}


class SARPatchDataModule(LightningDataModule, ABC):
    """Train/validation/test loaders of a patch dataset under ``root``, generated there when synthetic.

    Subclasses say how to write the synthetic layout (:meth:`write_synthetic`), what a complete root holds
    (:meth:`check_layout`) and how to read one split (:meth:`split_dataset`).
    """

    layout_hint: str = "the dataset files"

    def __init__(
        self,
        root: str,
        synthetic: bool,
        image_size: int,
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int,
        val_batch_size: int,
        num_workers: int,
        flip: bool,
        train_splits: Sequence[str],
        simulator: Mapping[str, Any] | None,
        pin_memory: bool,
        drop_last: bool,
    ) -> None:
        super().__init__()
        check_positive(image_size=image_size, num_classes=num_classes, batch_size=batch_size,
                       val_batch_size=val_batch_size)
        if num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {num_workers}")
        unknown = [split for split in train_splits if split not in SPLITS]
        if unknown or not train_splits:
            raise ConfigError(f"data.train_splits must name splits among {list(SPLITS)}, got {list(train_splits)}")
        self.root = Path(root)
        self.synthetic = synthetic
        self.image_size = image_size
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.num_workers = num_workers
        self.train_splits = list(train_splits)
        self.simulator = plain(simulator or {})
        self.pin_memory = pin_memory
        self.drop_last = drop_last
        self.transform = PatchBatchTransform(image_size, plain(mean), plain(std), flip)
        self.datasets: dict[str, Dataset] = {}

    @abstractmethod
    def write_synthetic(self, root: Path) -> None:
        """Generate the synthetic dataset into the empty (or missing) ``root``, atomically."""

    @abstractmethod
    def check_layout(self) -> None:
        """DataError naming what is missing when ``root`` does not hold a complete dataset."""

    @abstractmethod
    def split_dataset(self, split: str) -> Dataset:
        """The dataset of one split (``train``, ``validation`` or ``test``)."""

    def _check_root(self) -> None:
        if is_missing_or_empty(self.root):
            raise DataError(
                f"{self.root}: dataset directory is missing or empty; set data.root to a directory holding "
                f"{self.layout_hint}, or set data.synthetic=true to generate one"
            )

    def prepare_data(self) -> None:
        """Generate the synthetic dataset into an empty root (safe when processes race), then check it."""
        if self.synthetic and is_missing_or_empty(self.root):
            try:
                self.write_synthetic(self.root)
            except FileExistsError:
                pass  # another process published a complete dataset first; use it
        self._check_root()
        self.check_layout()

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets the stage needs (only once each)."""
        self._check_root()
        needed = {"fit": ["train", "validation"], "validate": ["validation"], "test": ["test"]}
        for split in needed.get(stage or "", list(SPLITS)):
            if split not in self.datasets:
                self.datasets[split] = self._training_set() if split == "train" else self.split_dataset(split)

    def _training_set(self) -> Dataset:
        parts = [self.split_dataset(split) for split in self.train_splits]
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before the {split} dataloader is requested")
        return split_loader(self.datasets[split], batch_size=batch_size, train=shuffle, num_workers=self.num_workers,
                            pin_memory=self.pin_memory, drop_last=self.drop_last and shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", self.val_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.val_batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        """Resize, flip (training only) and normalise on the device; see :class:`PatchBatchTransform`."""
        training = self.trainer is not None and self.trainer.training
        return self.transform(batch, training)


def simulator_arguments(simulator: Mapping[str, Any], writer: Callable[..., Any]) -> dict[str, Any]:
    """``data.simulator`` as keyword arguments of ``writer``, naming a misspelled key before generating."""
    known = [name for name in inspect.signature(writer).parameters if name != "root"]
    for key in simulator:
        if key not in known:
            raise ConfigError(f"config key 'data.simulator.{key}' is not an argument of {writer.__name__}; "
                              f"known: {known}")
    return dict(simulator)


def relative_to_root(path: str | os.PathLike[str], root: Path) -> Path:
    """A configured file path: absolute as given, relative ones under ``root``."""
    path = Path(path)
    return path if path.is_absolute() else root / path
