"""SEN12-FLOOD curated pairs: binary flood detection from two Sentinel-1 dates (VH, VV).

Layout (the output of the SAR-W-MixMAE preparation script ``prepare_sen12flood.sh``):
``<root>/{train,test}/<folder>__<image 1>__<image 2>__<label>.npy``, float32 (2 dates, 2 = VH/VV, 512, 512)
linear σ⁰, label 1 = flooded second date. Items: ``image_db`` float32 (2, 2, H, W) = 10·log10 of the
linear values, where non-positive values (no-data zeros) are first set to 1e-6 as upstream does for zeros,
and ``label`` float32 0/1. The batch transform resizes both dates to ``image_size``, flips them alike in
training (off by default: upstream does not augment here) and normalises with the BENv1 statistics, since
fine-tuning starts from a BENv1-pretrained encoder.

Splits: the curated data has train and test only. ``validation_fraction`` > 0 holds out that fraction of
the training *folders* (locations; pairs of one location never straddle the split) as the validation set;
0 validates on the test split, as the upstream script does (model selection on test).
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sarexp.data.bigearthnet import BENV1_MEAN, BENV1_STD
from sarexp.data.config_values import plain
from sarexp.data.sar_patches import SARPatchDataModule, simulator_arguments
from sarexp.data.synthetic.sen12flood import write_sen12flood
from sarexp.errors import ConfigError, DataError, first_line

NO_DATA_FLOOR = 1e-6


def pair_label(path: Path) -> int:
    """The flood label in a pair's file name (the part after the last ``__``); DataError naming the file."""
    label = path.stem.rsplit("__", 1)[-1]
    if "__" not in path.stem or label not in ("0", "1"):
        raise DataError(f"{path}: file name must end in __0.npy (no flood) or __1.npy (flood)")
    return int(label)


def pair_folder(path: Path) -> str:
    """The SEN12-FLOOD folder (location) a pair comes from: the part before the first ``__``."""
    return path.name.split("__", 1)[0]


class SEN12FloodDataset(Dataset):
    """Pairs of dates from ``.npy`` files; labels are parsed (and checked) when the dataset is built."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.labels = [pair_label(path) for path in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        path = self.paths[index]
        try:
            pair = np.load(path)
        except Exception as error:  # numpy raises several types for damaged files
            raise DataError(f"{path}: not a readable .npy array (truncated or corrupt? {first_line(error)})") from None
        if pair.ndim != 4 or pair.shape[:2] != (2, 2):
            raise DataError(f"{path}: expected shape (2 dates, 2 polarisations, H, W), got {pair.shape}")
        linear = pair.astype(np.float32)
        if not np.isfinite(linear).all():
            raise DataError(f"{path}: contains NaN or infinite values")
        image_db = 10.0 * np.log10(np.where(linear > 0, linear, NO_DATA_FLOOR))
        return {
            "image_db": torch.from_numpy(image_db.astype(np.float32)),
            "label": torch.tensor(float(self.labels[index])),
        }


class SEN12FloodDataModule(SARPatchDataModule):
    """Train/validation/test loaders of curated SEN12-FLOOD pairs; see the module docstring."""

    layout_hint = "train/*.npy and test/*.npy pairs"

    def __init__(
        self,
        root: str,
        synthetic: bool = True,
        image_size: int = 512,
        num_classes: int = 1,
        mean: Sequence[float] = BENV1_MEAN,
        std: Sequence[float] = BENV1_STD,
        batch_size: int = 8,
        val_batch_size: int = 8,
        num_workers: int = 0,
        flip: bool = False,
        train_splits: Sequence[str] = ("train",),
        simulator: Mapping[str, Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        validation_fraction: float = 0.2,
        split_seed: int = 0,
        predict_inputs: Sequence[str] | None = None,
    ) -> None:
        super().__init__(root, synthetic, image_size, num_classes, mean, std, batch_size, val_batch_size,
                         num_workers, flip, train_splits, simulator, pin_memory, drop_last)
        if num_classes != 1:
            raise ConfigError(f"data.num_classes must be 1 for SEN12-FLOOD (one flood logit), got {num_classes}")
        if not 0 <= validation_fraction < 1:
            raise ConfigError(f"data.validation_fraction must be in [0, 1), got {validation_fraction}")
        self.validation_fraction = validation_fraction
        self.split_seed = split_seed
        self.predict_inputs = plain(predict_inputs or [])
        self.simulator = simulator_arguments(self.simulator, write_sen12flood)

    def write_synthetic(self, root: Path) -> None:
        write_sen12flood(root, **self.simulator)

    def directory_pairs(self, directory: str) -> list[Path]:
        """Sorted ``.npy`` pairs of ``<root>/<directory>``; DataError when there are none."""
        path = self.root / directory
        pairs = sorted(path.glob("*.npy")) if path.is_dir() else []
        if not pairs:
            raise DataError(f"{path}: no *.npy pairs; a curated SEN12-FLOOD root holds train/ and test/")
        return pairs

    def validation_folders(self) -> set[str]:
        """The training folders held out for validation (a seeded choice of whole locations)."""
        folders = sorted({pair_folder(path) for path in self.directory_pairs("train")})
        count = round(self.validation_fraction * len(folders))
        if self.validation_fraction > 0 and not 0 < count < len(folders):
            raise DataError(
                f"{self.root / 'train'}: {len(folders)} folders cannot be split by data.validation_fraction="
                f"{self.validation_fraction}; change it (0 validates on test)"
            )
        chosen = np.random.default_rng(self.split_seed).permutation(len(folders))[:count]
        return {folders[index] for index in chosen}

    def split_paths(self, split: str) -> list[Path]:
        """Pair files of ``train``, ``validation`` or ``test``."""
        if split == "test" or (split == "validation" and self.validation_fraction == 0):
            return self.directory_pairs("test")
        held_out = self.validation_folders()
        keep = split == "validation"
        return [path for path in self.directory_pairs("train") if (pair_folder(path) in held_out) == keep]

    def check_layout(self) -> None:
        for split in ("train", "validation", "test"):
            SEN12FloodDataset(self.split_paths(split))

    def split_dataset(self, split: str) -> Dataset:
        return SEN12FloodDataset(self.split_paths(split))
