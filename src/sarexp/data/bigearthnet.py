"""BigEarthNet-S1 (VH, VV) data modules: v1.0 per-patch folders, v1.0 zarr, and v2.0 (reBEN).

Layouts are described in :mod:`sarexp.data.synthetic.bigearthnet` and docs/mixmae_data.md. Every item is
``image_db`` float32 (2, 120, 120) in dB (VH, VV) and ``label`` float32 (19,) multi-hot over
:data:`~sarexp.data.bigearthnet_labels.BEN19_CLASSES`; resizing, flips and normalisation happen on the batch
(:mod:`sarexp.data.sar_patches`).

Channel statistics (dB, VH first): the cross-polarised VH return is the weaker one, so the mean near −19 dB
is VH and the one near −12.6 dB is VV (the upstream loaders stack ``[VH, VV]`` and normalise with these
lists in that order). v1: mean (−19.2309, −12.5951), std (3.1672, 2.9644); v2: mean (−19.1966, −12.5144),
std (5.4501, 5.0019).
"""

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import zarr
from torch.utils.data import Dataset

from sarexp.data.config_values import plain
from sarexp.data.bigearthnet_labels import UnknownLabelError, ben19_multi_hot, clc43_to_ben19_multi_hot
from sarexp.data.input_checks import check_bands
from sarexp.data.sar_patches import SARPatchDataModule, relative_to_root, simulator_arguments
from sarexp.data.synthetic import bigearthnet as generator
from sarexp.errors import ConfigError, DataError, first_line
from sarexp.io.raster import read_tiff_bands

BENV1_MEAN = (-19.2309, -12.5951)
BENV1_STD = (3.1672, 2.9644)
BENV2_MEAN = (-19.1966, -12.5144)
BENV2_STD = (5.4501, 5.0019)
POLARISATIONS = ("VH", "VV")
V2_COLUMNS = ("patch_id", "labels", "split", "s1_name")


PATCH_SIZE = 120  # Sentinel-1 patches of BigEarthNet v1 and v2 are 120 × 120 pixels


def read_patch_bands(paths: Sequence[Path], size: int, band_scale: float = 1.0) -> np.ndarray:
    """The VH and VV GeoTIFFs of one patch as float32 (2, size, size), each band checked (shape, dtype,
    finiteness) at read time so a bad file is named instead of failing later in collate; integer bands are
    multiplied by ``band_scale`` (:func:`~sarexp.data.input_checks.check_bands`)."""
    bands = [read_tiff_bands(path) for path in paths]
    return check_bands([band[0] if len(band) == 1 else band for band in bands], paths, (size, size), band_scale)


def _item(image_db: np.ndarray, label: np.ndarray) -> dict[str, torch.Tensor]:
    return {"image_db": torch.from_numpy(image_db), "label": torch.from_numpy(label)}


def read_split_file(path: Path, id_column: int, header: bool = False) -> list[str]:
    """Patch names in column ``id_column`` of a split CSV (skipping row 1 if ``header``); DataError names file/line."""
    if not path.is_file():
        raise DataError(f"{path}: split file is missing; set the data module's split_files or regenerate the dataset")
    names = []
    with open(path, newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if not row or (header and line == 1):
                continue
            if len(row) <= id_column:
                raise DataError(f"{path}:{line}: {len(row)} columns, the patch name is expected in column {id_column}")
            names.append(row[id_column].strip())
    if not names:
        raise DataError(f"{path}: split file lists no patches")
    return names


class BigEarthNetV1Dataset(Dataset):
    """BigEarthNet-S1 v1.0 patches: ``<patches_dir>/<name>/<name>_{VH,VV}.tif`` and ``_labels_metadata.json``."""

    def __init__(self, patches_dir: Path, names: Sequence[str], size: int = PATCH_SIZE, band_scale: float = 1.0) -> None:
        self.patches_dir = Path(patches_dir)
        self.names = list(names)
        self.size = size
        self.band_scale = band_scale

    def __len__(self) -> int:
        return len(self.names)

    def labels(self, index: int) -> np.ndarray:
        """float32 (19,) multi-hot from the 43-class names in the patch's JSON."""
        name = self.names[index]
        path = self.patches_dir / name / f"{name}_labels_metadata.json"
        try:
            names43 = json.loads(path.read_text())["labels"]
        except FileNotFoundError:
            raise DataError(f"{path}: labels file is missing; the dataset layout is incomplete") from None
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            raise DataError(f"{path}: not a BigEarthNet labels JSON with a 'labels' list ({error})") from None
        try:
            return clc43_to_ben19_multi_hot(names43)
        except UnknownLabelError as error:
            raise DataError(f"{path}: {error}") from None

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        name = self.names[index]
        paths = [self.patches_dir / name / f"{name}_{pol}.tif" for pol in POLARISATIONS]
        return _item(read_patch_bands(paths, self.size, self.band_scale), self.labels(index))


class BigEarthNetV1ZarrDataset(Dataset):
    """BigEarthNet-S1 v1.0 in one zarr store: ``sentinel1/<name>/{VH,VV}`` arrays, labels in the group attributes.

    The store is opened lazily in the process that reads it (DataLoader workers).
    """

    def __init__(self, store: Path, names: Sequence[str], size: int = PATCH_SIZE, band_scale: float = 1.0) -> None:
        self.store = Path(store)
        self.names = list(names)
        self.size = size
        self.band_scale = band_scale
        self._group: Any = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_group": None, "_pid": None}

    def _sentinel1(self) -> Any:
        if self._group is None or self._pid != os.getpid():
            try:
                self._group = zarr.open_group(self.store, mode="r")["sentinel1"]
            except Exception as error:  # zarr raises several types for missing or damaged stores
                raise DataError(f"{self.store}: not a zarr store with a 'sentinel1' group ({first_line(error)})") from None
            self._pid = os.getpid()
        return self._group

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        name = self.names[index]
        location = f"{self.store}/sentinel1/{name}"
        try:
            group = self._sentinel1()[name]
            bands = [np.asarray(group[pol][:]) for pol in POLARISATIONS]
            names43 = list(group.attrs["labels"])
        except DataError:
            raise
        except Exception as error:  # a missing patch, array or attribute, or a damaged chunk
            raise DataError(
                f"{location}: cannot read the patch (truncated or corrupt chunk? {type(error).__name__}: "
                f"{first_line(error)})"
            ) from None
        image_db = check_bands(bands, [f"{location}/{pol}" for pol in POLARISATIONS], (self.size, self.size),
                              self.band_scale)
        try:
            return _item(image_db, clc43_to_ben19_multi_hot(names43))
        except UnknownLabelError as error:
            raise DataError(f"{location}: {error}") from None


class BigEarthNetV2Dataset(Dataset):
    """reBEN S1 patches ``<patches_dir>/<first five name parts>/<s1_name>/<s1_name>_{VH,VV}.tif``."""

    def __init__(self, patches_dir: Path, s1_names: Sequence[str], labels: np.ndarray, size: int = PATCH_SIZE,
                 band_scale: float = 1.0) -> None:
        self.patches_dir = Path(patches_dir)
        self.s1_names = list(s1_names)
        self.label_matrix = labels
        self.size = size
        self.band_scale = band_scale

    def __len__(self) -> int:
        return len(self.s1_names)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        name = self.s1_names[index]
        folder = self.patches_dir / generator.v2_folder(name) / name
        paths = [folder / f"{name}_{pol}.tif" for pol in POLARISATIONS]
        return _item(read_patch_bands(paths, self.size, self.band_scale), self.label_matrix[index])


def _check_num_classes(num_classes: int) -> None:
    if num_classes != 19:
        raise ConfigError(f"data.num_classes must be 19 for BigEarthNet (the 19-class nomenclature), got {num_classes}")


class BigEarthNetV1DataModule(SARPatchDataModule):
    """BigEarthNet-S1 v1.0 from per-patch folders and split CSVs; see the module docstring."""

    layout_hint = "BigEarthNet-S1-v1.0/<patch>/ folders and bigearthnet-{train,val,test}.csv"
    writer = staticmethod(generator.write_benv1)

    def __init__(
        self,
        root: str,
        synthetic: bool = True,
        image_size: int = 128,
        num_classes: int = 19,
        mean: Sequence[float] = BENV1_MEAN,
        std: Sequence[float] = BENV1_STD,
        batch_size: int = 32,
        val_batch_size: int = 64,
        num_workers: int = 0,
        flip: bool = True,
        train_splits: Sequence[str] = ("train",),
        simulator: Mapping[str, Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        split_files: Mapping[str, str] = generator.V1_SPLIT_FILES,
        id_column: int = 1,
        header: bool = False,
        patches_dir: str = generator.V1_PATCHES_DIR,
        band_scale: float = 1.0,
        predict_inputs: Sequence[str] | None = None,
    ) -> None:
        super().__init__(root, synthetic, image_size, num_classes, mean, std, batch_size, val_batch_size,
                         num_workers, flip, train_splits, simulator, pin_memory, drop_last)
        _check_num_classes(num_classes)
        missing = [split for split in ("train", "validation", "test") if split not in split_files]
        if missing:
            raise ConfigError(f"data.split_files needs a file for each of train, validation, test; missing {missing}")
        if id_column < 0:
            raise ConfigError(f"data.id_column must be >= 0, got {id_column}")
        self.split_files = {split: str(name) for split, name in split_files.items()}
        self.id_column = id_column
        self.header = header
        self.patches_dir = patches_dir
        self.band_scale = band_scale
        self.predict_inputs = plain(predict_inputs or [])
        self.simulator = simulator_arguments(self.simulator, self.writer)
        self.patch_size = int(self.simulator.get("size", PATCH_SIZE))  # 120 for real data

    def write_synthetic(self, root: Path) -> None:
        self.writer(root, **self.simulator)

    def split_names(self, split: str) -> list[str]:
        """S1 patch names of a split, from its CSV."""
        return read_split_file(relative_to_root(self.split_files[split], self.root), self.id_column, self.header)

    def check_layout(self) -> None:
        directory = relative_to_root(self.patches_dir, self.root)
        if not directory.is_dir():
            raise DataError(f"{directory}: patch directory is missing; set data.patches_dir or regenerate the dataset")
        for split in self.split_files:
            self.split_names(split)

    def split_dataset(self, split: str) -> Dataset:
        return BigEarthNetV1Dataset(relative_to_root(self.patches_dir, self.root), self.split_names(split),
                                    self.patch_size, self.band_scale)


class BigEarthNetV1ZarrDataModule(BigEarthNetV1DataModule):
    """BigEarthNet-S1 v1.0 from one zarr store and the split CSVs (the SAR-W-MixMAE storage)."""

    layout_hint = "BigEarthNet-S1-v1.0.zarr and bigearthnet-{train,val,test}.csv"
    writer = staticmethod(generator.write_benv1_zarr)

    def __init__(
        self,
        root: str,
        synthetic: bool = True,
        image_size: int = 128,
        num_classes: int = 19,
        mean: Sequence[float] = BENV1_MEAN,
        std: Sequence[float] = BENV1_STD,
        batch_size: int = 32,
        val_batch_size: int = 64,
        num_workers: int = 0,
        flip: bool = True,
        train_splits: Sequence[str] = ("train",),
        simulator: Mapping[str, Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        split_files: Mapping[str, str] = generator.V1_SPLIT_FILES,
        id_column: int = 1,
        header: bool = False,
        zarr_store: str = generator.V1_ZARR_STORE,
        band_scale: float = 1.0,
        predict_inputs: Sequence[str] | None = None,
    ) -> None:
        super().__init__(root, synthetic, image_size, num_classes, mean, std, batch_size, val_batch_size,
                         num_workers, flip, train_splits, simulator, pin_memory, drop_last, split_files, id_column,
                         header, band_scale=band_scale, predict_inputs=predict_inputs)
        self.zarr_store = zarr_store

    def check_layout(self) -> None:
        store = relative_to_root(self.zarr_store, self.root)
        if not store.is_dir():
            raise DataError(f"{store}: zarr store is missing; set data.zarr_store or regenerate the dataset")
        for split in self.split_files:
            self.split_names(split)

    def split_dataset(self, split: str) -> Dataset:
        return BigEarthNetV1ZarrDataset(relative_to_root(self.zarr_store, self.root), self.split_names(split),
                                        self.patch_size, self.band_scale)


class BigEarthNetV2DataModule(SARPatchDataModule):
    """BigEarthNet v2.0 (reBEN) S1 patches; splits and 19-class labels from ``metadata.parquet``."""

    layout_hint = "BigEarthNet-S1/ and metadata.parquet"

    def __init__(
        self,
        root: str,
        synthetic: bool = True,
        image_size: int = 128,
        num_classes: int = 19,
        mean: Sequence[float] = BENV2_MEAN,
        std: Sequence[float] = BENV2_STD,
        batch_size: int = 32,
        val_batch_size: int = 64,
        num_workers: int = 0,
        flip: bool = True,
        train_splits: Sequence[str] = ("train",),
        simulator: Mapping[str, Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        metadata: str = generator.V2_METADATA,
        patches_dir: str = generator.V2_PATCHES_DIR,
        band_scale: float = 1.0,
        predict_inputs: Sequence[str] | None = None,
    ) -> None:
        super().__init__(root, synthetic, image_size, num_classes, mean, std, batch_size, val_batch_size,
                         num_workers, flip, train_splits, simulator, pin_memory, drop_last)
        _check_num_classes(num_classes)
        self.metadata = metadata
        self.patches_dir = patches_dir
        self.band_scale = band_scale
        self.predict_inputs = plain(predict_inputs or [])
        self.simulator = simulator_arguments(self.simulator, generator.write_benv2)
        self.patch_size = int(self.simulator.get("size", PATCH_SIZE))  # 120 for real data
        self._table: pd.DataFrame | None = None

    def write_synthetic(self, root: Path) -> None:
        generator.write_benv2(root, **self.simulator)

    def table(self) -> pd.DataFrame:
        """The metadata table (read once), checked for the columns the loader needs."""
        if self._table is None:
            path = relative_to_root(self.metadata, self.root)
            if not path.is_file():
                raise DataError(f"{path}: metadata file is missing; set data.metadata or regenerate the dataset")
            try:
                table = pd.read_parquet(path)
            except Exception as error:  # pyarrow raises several types for damaged files
                raise DataError(f"{path}: not a readable parquet file (truncated or corrupt? {first_line(error)})") from None
            missing = [column for column in V2_COLUMNS if column not in table.columns]
            if missing:
                raise DataError(f"{path}: missing columns {missing}; reBEN metadata has {list(V2_COLUMNS)} and more")
            self._table = table
        return self._table

    def check_layout(self) -> None:
        directory = relative_to_root(self.patches_dir, self.root)
        if not directory.is_dir():
            raise DataError(f"{directory}: patch directory is missing; set data.patches_dir or regenerate the dataset")
        self.table()

    def split_dataset(self, split: str) -> Dataset:
        rows = self.table()[self.table()["split"] == split]
        path = relative_to_root(self.metadata, self.root)
        if rows.empty:
            raise DataError(f"{path}: no patches with split == {split!r}")
        try:
            labels = np.stack([ben19_multi_hot(list(names)) for names in rows["labels"]])
        except UnknownLabelError as error:
            raise DataError(f"{path}: {error}") from None
        return BigEarthNetV2Dataset(relative_to_root(self.patches_dir, self.root), rows["s1_name"].tolist(), labels,
                                    self.patch_size, self.band_scale)
