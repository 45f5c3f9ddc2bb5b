"""SAR → optical colorization pairs in the seed's ``Dataset/`` layout (config: ``conf/data/sen12_colorization.yaml``).

Layout and CSV columns: see :mod:`sarexp.data.synthetic.colorization` (generator) and
:mod:`sarexp.data.colorization_csv` (reader). Batches are dicts:

- ``sar``: float32 (B, 1, H, W) in [−1, 1] (8-bit grey 'L' PNG, x / 127.5 − 1),
- ``optical``: float32 (B, 3, H, W) in [−1, 1] ('RGB' PNG, same rule),
- ``prompt``: list[str], ``data.prompt_template`` filled from the row (``{region}``, ``{season}`` or any CSV
  column, e.g. ``{country}``); ``region`` / ``season``: list[str], normalised (``fall`` → ``autumn``).

Images must be exactly ``data.image_size`` square (DataError otherwise: no silent resizing of pairs).
Splits: the seed's ``train_split`` (0.8) is seeded (``split_seed``); ``split_by: scene`` holds out whole
``r_NNN`` folders so no scene leaks between train and validation, ``split_by: pair`` splits rows. The seed has
no test split: ``test`` is the validation split. Training flips SAR and optical alike (``flip``).
:func:`load_sar_image` turns one PNG into the same normalised SAR tensor for inference.
"""

import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from sarexp.data.colorization_csv import PairRecord, read_records
from sarexp.data.config_values import plain
from sarexp.data.resumable import split_loader
from sarexp.data.sar_patches import simulator_arguments
from sarexp.data.synthetic.colorization import REGIONS, SEASONS, write_colorization_dataset
from sarexp.data.synthetic.staging import is_missing_or_empty
from sarexp.errors import ConfigError, DataError

DEFAULT_TEMPLATE = "Colorize the image, Region: {region}, Season: {season}"
_MODES = {"sar": ("L", 1), "optical": ("RGB", 3)}


def read_png(path: str | Path, kind: Literal["sar", "optical"], image_size: int | None = None) -> torch.Tensor:
    """float32 (C, H, W) in [−1, 1] from an 8-bit PNG of the expected mode ('L' SAR, 'RGB' optical) and size."""
    mode, channels = _MODES[kind]
    try:
        with Image.open(path) as image:
            if image.mode != mode:
                raise DataError(f"{path}: {kind} image has mode {image.mode!r}, expected {mode!r} "
                                f"({'8-bit grey' if mode == 'L' else '8-bit RGB'})")
            if image_size is not None and image.size != (image_size, image_size):
                raise DataError(f"{path}: {kind} image is {image.size[0]}x{image.size[1]} px, expected "
                                f"{image_size}x{image_size} (data.image_size)")
            array = np.asarray(image, dtype=np.float32)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable image ({error})") from None
    array = array.reshape(array.shape[0], array.shape[1], channels).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array)) / 127.5 - 1.0


def load_sar_image(path: str | Path, image_size: int | None = None) -> torch.Tensor:
    """One SAR PNG as the model's input: float32 (1, 1, H, W) in [−1, 1] (the batch's ``sar`` rule)."""
    if not Path(path).is_file():
        raise DataError(f"{path}: SAR image not found")
    return read_png(path, "sar", image_size)[None]


def template_fields(template: str) -> list[str]:
    """The field names of a prompt template; ConfigError when it is malformed."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ConfigError(f"data.prompt_template {template!r} is not a valid format string ({error})") from None


def make_prompt(template: str, metadata: dict[str, str]) -> str:
    """The template filled from a row's metadata; DataError naming a field the row lacks."""
    try:
        return template.format_map(metadata)
    except KeyError as error:
        raise DataError(f"data.prompt_template uses {{{error.args[0]}}} but the CSV has no such column; "
                        f"columns: {sorted(metadata)}") from None


class ColorizationPairs(Dataset):
    """Pairs of one split; items hold the two images and the text fields (default collation batches them)."""

    def __init__(self, records: Sequence[PairRecord], template: str, image_size: int) -> None:
        self.records = list(records)
        self.template = template
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        return {
            "sar": read_png(record.sar, "sar", self.image_size),
            "optical": read_png(record.optical, "optical", self.image_size),
            "prompt": make_prompt(self.template, record.metadata),
            "region": record.region,
            "season": record.season,
        }


class ColorizationDataModule(LightningDataModule):
    """Train/validation (= test) loaders of SAR / optical pairs with prompts; see the module docstring."""

    def __init__(
        self,
        root: str,
        synthetic: bool = True,
        image_size: int = 64,
        prompt_template: str = DEFAULT_TEMPLATE,
        regions: Sequence[str] = REGIONS,
        seasons: Sequence[str] = SEASONS,
        train_split: float = 0.8,
        split_by: Literal["scene", "pair"] = "scene",
        split_seed: int = 0,
        batch_size: int = 32,
        val_batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
        flip: bool = True,
        simulator: dict[str, Any] | None = None,
        predict_inputs: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        sizes = {"image_size": image_size, "batch_size": batch_size, "val_batch_size": val_batch_size}
        for key, value in sizes.items():
            if value < 1:
                raise ConfigError(f"data.{key} must be a positive integer, got {value}")
        if not 0 < train_split < 1:
            raise ConfigError(f"data.train_split must be in (0, 1), got {train_split}")
        if split_by not in ("scene", "pair"):
            raise ConfigError(f"data.split_by must be 'scene' or 'pair', got {split_by!r}")
        if not regions or not seasons:
            raise ConfigError("data.regions and data.seasons must list at least one value each")
        template_fields(prompt_template)
        self.root = Path(root)
        self.synthetic = synthetic
        self.image_size = image_size
        self.prompt_template = prompt_template
        self.regions = tuple(str(region).lower() for region in regions)
        self.seasons = tuple(str(season).lower() for season in seasons)
        self.train_split = train_split
        self.split_by = split_by
        self.split_seed = split_seed
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.predict_inputs = plain(predict_inputs or [])
        self.flip = flip
        self.simulator = simulator_arguments(plain(simulator or {}), write_colorization_dataset)
        self.datasets: dict[str, ColorizationPairs] = {}
        self._records: list[PairRecord] | None = None

    def prepare_data(self) -> None:
        """Generate the synthetic dataset into an empty root (safe when processes race), then check it."""
        if self.synthetic and is_missing_or_empty(self.root):
            try:
                write_colorization_dataset(self.root, **self.simulator)
            except FileExistsError:
                pass  # another process published a complete dataset first
        self.split_records()

    def records(self) -> list[PairRecord]:
        """Every checked pair record under ``root`` (read once)."""
        if self._records is None:
            if is_missing_or_empty(self.root):
                raise DataError(f"{self.root}: dataset directory is missing or empty; set data.root to the seed's "
                                f"Dataset folder, or data.synthetic=true to generate one")
            self._records = read_records(self.root, self.regions, self.seasons)
        return self._records

    def split_records(self) -> dict[str, list[PairRecord]]:
        """``train`` / ``validation`` records: a seeded ``train_split`` of scenes (or of pairs)."""
        records = self.records()
        rng = np.random.default_rng(self.split_seed)
        units = sorted({record.scene for record in records}) if self.split_by == "scene" else list(range(len(records)))
        count = int(round(self.train_split * len(units)))
        if not 0 < count < len(units):
            raise DataError(f"{self.root}: {len(units)} {self.split_by}s cannot be split by data.train_split="
                            f"{self.train_split}; add data or use data.split_by=pair")
        training = {units[index] for index in rng.permutation(len(units))[:count]}
        keys = [record.scene if self.split_by == "scene" else index for index, record in enumerate(records)]
        return {"train": [record for record, key in zip(records, keys) if key in training],
                "validation": [record for record, key in zip(records, keys) if key not in training]}

    def prompt_corpus(self) -> list[str]:
        """Every prompt the model may be asked: the data's rows plus all configured region × season fills."""
        prompts = {make_prompt(self.prompt_template, record.metadata) for record in self.records()}
        if set(template_fields(self.prompt_template)) <= {"region", "season"}:
            prompts |= {self.prompt_template.format(region=region, season=season)
                        for region in self.regions for season in self.seasons}
        return sorted(prompts)

    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            for split, records in self.split_records().items():
                self.datasets[split] = ColorizationPairs(records, self.prompt_template, self.image_size)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise RuntimeError("ColorizationDataModule.setup() must run before its dataloaders are requested")
        return split_loader(self.datasets[split], batch_size=batch_size, train=shuffle,
                            num_workers=self.num_workers, pin_memory=self.pin_memory)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", self.val_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("validation", self.val_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("validation", self.val_batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """In training, flip each pair horizontally and vertically (each p = 0.5), SAR and optical alike."""
        if not (self.flip and self.trainer is not None and self.trainer.training):
            return batch
        sar, optical = batch["sar"], batch["optical"]
        shape = (sar.shape[0], 1, 1, 1)
        for dim in (-1, -2):
            flip = torch.rand(sar.shape[0], device=sar.device).reshape(shape) < 0.5
            sar, optical = torch.where(flip, sar.flip(dim), sar), torch.where(flip, optical.flip(dim), optical)
        return {**batch, "sar": sar, "optical": optical}
