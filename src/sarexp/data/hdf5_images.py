"""Images stored in HDF5 files, one file per split.

Layout::

    <root>/train.h5, <root>/val.h5, <root>/test.h5 (optional; val is used when it is missing)

Each file holds the datasets named by ``data.image_keys``, all with the same number N of images; each is
(N, H, W) (one channel) or (N, C, H, W) ((N, H, W, C) with ``data.channels_last=true``). The datasets are
stacked along channels in the order given, so ``[amplitude]``, ``[vv, vh]`` or ``[phase]`` all work.
``data.label_key`` names an optional label dataset: (N,) class indices, or (N, K) one-hot rows (So2Sat's
``label``), read as the index of the row's one. Scaling to [−1, 1] follows
``data.scaling`` (:mod:`sarexp.data.scaling`). Files are opened lazily in the process that reads them, so
DataLoader workers each hold their own handle.
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from sarexp.data.generative import ImageDataModule, make_item
from sarexp.data.scaling import ImageScaling, ScalingMode
from sarexp.errors import ConfigError, DataError, first_line


class HDF5ImageDataset(Dataset):
    """The images (and labels) of one HDF5 file."""

    def __init__(
        self,
        path: Path,
        image_keys: Sequence[str],
        scaling: ImageScaling,
        image_size: int,
        *,
        label_key: str | None = None,
        channels_last: bool = False,
        class_names: Sequence[str] = (),
        low_res_size: int | None = None,
    ) -> None:
        self.path = path
        self.image_keys = list(image_keys)
        self.label_key = label_key
        self.channels_last = channels_last
        self.scaling = scaling
        self.image_size = image_size
        self.low_res_size = low_res_size
        self.class_names = list(class_names)
        self._file: h5py.File | None = None
        self._pid = -1
        with open_hdf5(path) as handle:
            lengths = {key: self._dataset_length(handle, key) for key in self.image_keys}
            if label_key is not None:
                lengths[label_key] = self._dataset_length(handle, label_key)
                if handle[label_key].ndim not in (1, 2):
                    raise DataError(
                        f"{path}: label dataset '{label_key}' has shape {handle[label_key].shape}; expected (N,) class "
                        "indices or (N, K) one-hot rows"
                    )
                columns = handle[label_key].shape[1] if handle[label_key].ndim == 2 else None
                if columns is not None and self.class_names and columns != len(self.class_names):
                    raise DataError(
                        f"{path}: label dataset '{label_key}' has {columns} one-hot columns but there are "
                        f"{len(self.class_names)} classes; set data.num_classes={columns}"
                    )
        if len(set(lengths.values())) != 1:
            raise DataError(f"{path}: datasets hold different numbers of images: {lengths}")
        self._length = next(iter(lengths.values()))

    def _dataset_length(self, handle: h5py.File, key: str) -> int:
        if key not in handle or not isinstance(handle[key], h5py.Dataset):
            raise DataError(f"{self.path}: no dataset '{key}' (has {sorted(handle)}); check data.image_keys/label_key")
        return int(handle[key].shape[0])

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (spawned workers) without the open file."""
        return {**self.__dict__, "_file": None, "_pid": -1}

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = open_hdf5(self.path)
            self._pid = os.getpid()
        return self._file

    def __len__(self) -> int:
        return self._length

    def read_raw(self, index: int) -> np.ndarray:
        """Image ``index`` as stored, channels stacked: (C, H, W)."""
        handle = self._handle()
        parts = []
        for key in self.image_keys:
            array = _read_row(handle, key, index, self.path)
            if array.ndim == 3 and self.channels_last:
                array = np.moveaxis(array, -1, 0)
            parts.append(array[None] if array.ndim == 2 else array)
        return np.concatenate(parts, axis=0)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self._length:
            raise IndexError(index)
        image = self.scaling(self.read_raw(index), f"{self.path}[{index}]")
        label = self.label(index) if self.label_key is not None else None
        return make_item(image, label, self.image_size, self.low_res_size)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """A whole batch (the DataLoader asks for it at once): one HDF5 read per dataset for all its rows
        instead of one per row, which made the reader 2.5× slower than the PDM seed's (benchmarks/parity.py);
        each image is then scaled and checked on its own, as `__getitem__` does."""
        if any(not 0 <= index < self._length for index in indices):
            raise IndexError([index for index in indices if not 0 <= index < self._length])
        handle = self._handle()
        rows, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
        parts = []
        for key in self.image_keys:
            block = _read_rows(handle, key, rows, self.path)[inverse]
            if block.ndim == 4 and self.channels_last:
                block = np.moveaxis(block, -1, 1)
            parts.append(block[:, None] if block.ndim == 3 else block)
        images = np.concatenate(parts, axis=1)
        labels = ([self._label_of_row(row, index) for row, index in
                   zip(_read_rows(handle, self.label_key, rows, self.path)[inverse], indices, strict=True)]
                  if self.label_key is not None else [None] * len(indices))
        return [make_item(self.scaling(image, f"{self.path}[{index}]"), label, self.image_size, self.low_res_size)
                for image, label, index in zip(images, labels, indices, strict=True)]


    def label(self, index: int) -> int:
        """The class of image ``index``: a stored index, or the position of the one in a one-hot row."""
        return self._label_of_row(_read_row(self._handle(), self.label_key, index, self.path), index)

    def _label_of_row(self, row: np.ndarray, index: int) -> int:
        if row.ndim == 0:
            return int(row)
        ones = np.flatnonzero(row)
        if len(ones) != 1 or row[ones[0]] != 1:
            raise DataError(
                f"{self.path}: row {index} of label dataset '{self.label_key}' is not one-hot ({len(ones)} non-zero "
                "entries); multi-label rows need a multi-label data module"
            )
        return int(ones[0])


def open_hdf5(path: Path) -> h5py.File:
    """``path`` opened read-only; DataError naming it when it is missing, truncated or not HDF5."""
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"{path}: not a readable HDF5 file (truncated or corrupt? {first_line(error)})") from None


def _read_rows(handle: h5py.File, key: str, rows: np.ndarray, path: Path) -> np.ndarray:
    """Rows ``rows`` (increasing, unique) of dataset ``key`` in one read."""
    try:
        return np.asarray(handle[key][rows])
    except (OSError, RuntimeError, KeyError) as error:
        raise DataError(f"{path}: cannot read rows {rows[0]}…{rows[-1]} of dataset '{key}' (corrupt? "
                        f"{first_line(error)})") from None


def _read_row(handle: h5py.File, key: str, index: int, path: Path) -> np.ndarray:
    try:
        return np.asarray(handle[key][index])
    except (OSError, RuntimeError, KeyError) as error:  # a damaged chunk surfaces on read
        raise DataError(f"{path}: cannot read row {index} of dataset '{key}' (corrupt? {first_line(error)})") from None


class HDF5ImageDataModule(ImageDataModule):
    """HDF5 files ``root/{train,val,test}.h5`` (see the module docstring)."""

    layout = "train.h5 and val.h5 (optionally test.h5) with the datasets named by data.image_keys"

    def __init__(
        self,
        root: str,
        image_keys: Sequence[str] = ("images",),
        label_key: str | None = None,
        channels_last: bool = False,
        class_names: Sequence[str] | None = None,
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
        super().__init__(
            root, synthetic, generator, image_size, channels, num_classes, scaling, value_range, low_res_size,
            batch_size, val_batch_size, num_workers, pin_memory, persistent_workers,
        )
        if not image_keys:
            raise ConfigError("data.image_keys must name at least one HDF5 dataset")
        self.image_keys = list(image_keys)
        self.label_key = label_key
        self.channels_last = channels_last
        self.given_class_names = list(class_names) if class_names is not None else None

    def split_exists(self, split: str) -> bool:
        return (self.root / f"{split}.h5").is_file()

    def _class_names(self, path: Path) -> list[str]:
        """Class names from config, else the file's ``class_names`` attribute, else 0..K-1."""
        if self.label_key is None:
            return []
        if self.given_class_names is not None:
            return self.given_class_names
        with open_hdf5(path) as handle:
            stored = handle.attrs.get("class_names")
            if stored is not None:
                return [str(name) for name in stored]
        return [str(index) for index in range(self.num_classes)]

    def build_dataset(self, split: str) -> HDF5ImageDataset:
        path = self.root / f"{split}.h5"
        return HDF5ImageDataset(
            path,
            self.image_keys,
            self.scaling,
            self.image_size,
            label_key=self.label_key,
            channels_last=self.channels_last,
            class_names=self._class_names(path),
            low_res_size=self.low_res_size,
        )
