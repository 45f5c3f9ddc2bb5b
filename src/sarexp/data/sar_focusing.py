"""SSM4SAR data: SAR scenes in zarr, served as azimuth patches of one range column.

Layout, scene reading and normalisation: :mod:`sarexp.data.sar_scenes`.

Samples
-------
A sample is ``patch_length`` consecutive azimuth lines of one range column, one patch starting every
``stride`` lines (the SSM4SAR (L, 1) patch): focusing acts along azimuth, so columns are independent
sequences. Item: ``input`` float32 (3, L) = [I, Q, position], ``target`` float32 (2, L) = [I, Q],
``location`` int64 (3,) = [scene index, range column, first azimuth line].

Chunk-aware reading
-------------------
Zarr decodes whole chunks, so reading one column of a (256, 32) chunk would decode 32 columns for one.
Samples are grouped in blocks: one chunk column of range bins × the azimuth window of ``patches_per_block``
consecutive patches. A block is read once into a small per-process LRU cache and serves all its samples;
the flat sample index is block-major, so each block is a contiguous index range. :class:`ChunkAwareSampler`
shuffles blocks and the samples within them, so a shuffled epoch still reads each block about once.
Zarr stores are opened lazily in the process that reads them (DataLoader workers, fork or spawn).
"""

import bisect
import inspect
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from sarexp.data.chunk_sampler import ChunkAwareSampler
from sarexp.data.config_values import check_positive, plain
from sarexp.data.resumable import split_loader
from sarexp.data.sar_scenes import (
    FIX_HINT,
    SceneStore,
    chunk_slices,
    estimate_scale,
    make_input,
    make_target,
    open_scene,
)
from sarexp.data.scene_tiles import SceneTileDataset
from sarexp.data.synthetic.staging import is_missing_or_empty
from sarexp.data.synthetic.stripmap_dataset import write_synthetic_dataset
from sarexp.errors import ConfigError, DataError

SPLITS = ("training", "validation")


@dataclass(frozen=True)
class _SceneInfo:
    """What a reader needs to know of a scene without holding its store open."""

    path: Path
    shape: tuple[int, int]
    scale: float


@dataclass(frozen=True)
class _Block:
    """Samples read together: one chunk column of range bins × the azimuth window of a few patches."""

    scene: int
    lines: tuple[int, int]
    columns: tuple[int, int]
    starts: tuple[int, ...]
    first_index: int

    @property
    def size(self) -> int:
        """Number of samples (columns × patch starts)."""
        return (self.columns[1] - self.columns[0]) * len(self.starts)


class SARFocusingDataset(Dataset):
    """Azimuth patches of single range columns from zarr scenes, read block-wise and cached per process."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        patch_length: int,
        stride: int,
        *,
        scale_blocks: int = 16,
        seed: int = 0,
        patches_per_block: int = 4,
        cache_blocks: int = 4,
        with_target: bool = True,
    ) -> None:
        check_positive(
            patch_length=patch_length,
            stride=stride,
            scale_blocks=scale_blocks,
            patches_per_block=patches_per_block,
            cache_blocks=cache_blocks,
        )
        self.patch_length = patch_length
        self.stride = stride
        self.patches_per_block = patches_per_block
        self.cache_blocks = cache_blocks
        self.with_target = with_target
        self.scenes: list[_SceneInfo] = []
        self.blocks: list[_Block] = []
        for path in paths:
            self._add_scene(open_scene(path), scale_blocks, seed)
        self._first_indices = [block.first_index for block in self.blocks]
        self._length = sum(block.size for block in self.blocks)
        self._reset_process_state()

    def _add_scene(self, store: SceneStore, scale_blocks: int, seed: int) -> None:
        """Check a scene, estimate its scale and append its blocks."""
        n_azimuth, n_range = store.shape
        if self.with_target and store.az is None:
            raise DataError(f"{store.path}: no reference array 'az', needed for training and evaluation; {FIX_HINT}")
        if n_azimuth < self.patch_length:
            raise DataError(
                f"{store.path}: {n_azimuth} azimuth lines, fewer than data.patch_length={self.patch_length}; "
                "lower data.patch_length or remove the scene"
            )
        scene = len(self.scenes)
        self.scenes.append(_SceneInfo(store.path, store.shape, estimate_scale(store, scale_blocks, seed)))
        starts = list(range(0, n_azimuth - self.patch_length + 1, self.stride))
        next_index = self.blocks[-1].first_index + self.blocks[-1].size if self.blocks else 0
        for group in range(0, len(starts), self.patches_per_block):
            group_starts = tuple(starts[group : group + self.patches_per_block])
            lines = (group_starts[0], group_starts[-1] + self.patch_length)
            for columns in chunk_slices(n_range, store.chunks[1]):
                block = _Block(scene, lines, (columns.start, columns.stop), group_starts, next_index)
                self.blocks.append(block)
                next_index += block.size

    def _reset_process_state(self) -> None:
        """Forget open stores and cached blocks: they belong to the process that made them."""
        self._pid = os.getpid()
        self._stores: dict[int, SceneStore] = {}
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (spawned workers) without open stores or cached blocks."""
        state = self.__dict__.copy()
        state.update(_stores={}, _cache=OrderedDict())
        return state

    @property
    def block_ranges(self) -> list[tuple[int, int]]:
        """Flat index range [first, stop) of each block, for :class:`ChunkAwareSampler`."""
        return [(block.first_index, block.first_index + block.size) for block in self.blocks]

    @property
    def scales(self) -> list[float]:
        """Normalisation scale of each scene, in scene order."""
        return [scene.scale for scene in self.scenes]

    def __len__(self) -> int:
        return self._length

    def _store(self, scene: int) -> SceneStore:
        """The scene's store, opened on first use in this process."""
        if scene not in self._stores:
            self._stores[scene] = open_scene(self.scenes[scene].path)
        return self._stores[scene]

    def load_block(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Read and normalise block ``index``: inputs (columns, 3, lines) and targets (columns, 2, lines)."""
        block = self.blocks[index]
        scene = self.scenes[block.scene]
        store = self._store(block.scene)
        lines, columns = slice(*block.lines), slice(*block.columns)
        inputs = make_input(store.read("rc", lines, columns), block.lines[0], scene.shape[0], scene.scale)
        targets = make_target(store.read("az", lines, columns), scene.scale) if self.with_target else None
        return inputs, targets

    def _cached_block(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Block ``index`` from this process's LRU cache, loading it on a miss."""
        if self._pid != os.getpid():
            self._reset_process_state()
        if index in self._cache:
            self._cache.move_to_end(index)
        else:
            self._cache[index] = self.load_block(index)
            if len(self._cache) > self.cache_blocks:
                self._cache.popitem(last=False)
        return self._cache[index]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self._length:
            raise IndexError(f"sample index {index} out of range for {self._length} samples")
        block_index = bisect.bisect_right(self._first_indices, index) - 1
        block = self.blocks[block_index]
        column, patch = divmod(index - block.first_index, len(block.starts))
        inputs, targets = self._cached_block(block_index)
        offset = block.starts[patch] - block.lines[0]
        window = slice(offset, offset + self.patch_length)
        item = {
            "input": torch.from_numpy(inputs[column, :, window].copy()),
            "location": torch.tensor([block.scene, block.columns[0] + column, block.starts[patch]]),
        }
        if targets is not None:
            item["target"] = torch.from_numpy(targets[column, :, window].copy())
        return item


class SARFocusingDataModule(LightningDataModule):
    """Train/validation/test loaders of SSM4SAR scenes under ``root``, generated there when synthetic."""

    def __init__(
        self,
        root: str,
        synthetic: bool = True,
        simulator: Mapping[str, Any] | None = None,
        patch_length: int = 256,
        stride: int = 128,
        batch_size: int = 16,
        val_batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
        scale_blocks: int = 16,
        seed: int = 0,
        patches_per_block: int = 4,
        mix_blocks: int = 2,
        cache_blocks: int = 4,
        persistent_workers: bool = False,
        multiprocessing_context: str | None = None,
        predict_inputs: Sequence[str] | None = None,
        predict_overlap: int = 64,
        predict_columns: int | None = None,
    ) -> None:
        super().__init__()
        check_positive(
            patch_length=patch_length,
            stride=stride,
            batch_size=batch_size,
            val_batch_size=val_batch_size,
            scale_blocks=scale_blocks,
            patches_per_block=patches_per_block,
            mix_blocks=mix_blocks,
            cache_blocks=cache_blocks,
        )
        if num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {num_workers}")
        if cache_blocks < mix_blocks:
            raise ConfigError(f"data.cache_blocks ({cache_blocks}) must be >= data.mix_blocks ({mix_blocks})")
        self.root = Path(root)
        self.synthetic = synthetic
        self.simulator = plain(simulator or {})
        self._check_simulator_keys()
        self.patch_length = patch_length
        self.stride = stride
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.scale_blocks = scale_blocks
        self.seed = seed
        self.patches_per_block = patches_per_block
        self.mix_blocks = mix_blocks
        self.cache_blocks = cache_blocks
        self.persistent_workers = persistent_workers
        self.multiprocessing_context = multiprocessing_context
        self.predict_inputs = [Path(path) for path in predict_inputs or []]
        self.predict_overlap = predict_overlap
        self.predict_columns = predict_columns
        self.train_set: SARFocusingDataset | None = None
        self.val_set: SARFocusingDataset | None = None
        self.test_set: SARFocusingDataset | None = None
        self.predict_set: SceneTileDataset | None = None

    def _check_simulator_keys(self) -> None:
        """Name a misspelled data.simulator key before any generation starts."""
        known = [name for name in inspect.signature(write_synthetic_dataset).parameters if name != "root"]
        for key in self.simulator:
            if key not in known:
                raise ConfigError(f"config key 'data.simulator.{key}' is not a simulator argument; known: {known}")

    def _check_root(self) -> None:
        """DataError when the dataset directory is missing or empty, saying how to fix it."""
        if is_missing_or_empty(self.root):
            raise DataError(
                f"{self.root}: dataset directory is missing or empty; set data.root to a directory holding "
                "training/*.zarr and validation/*.zarr, or set data.synthetic=true to generate one"
            )

    def prepare_data(self) -> None:
        """Generate the synthetic dataset into an empty root (safe when processes race), then check it.

        Prediction on explicit ``predict_inputs`` needs no dataset under ``root``.
        """
        if self.predict_inputs and self.trainer is not None and self.trainer.predicting:
            return
        if self.synthetic and is_missing_or_empty(self.root):
            try:
                write_synthetic_dataset(self.root, **self.simulator)
            except FileExistsError:
                pass  # another process published a complete dataset first; use it
        self._check_root()
        for split in SPLITS:
            self.scene_paths(split)

    def scene_paths(self, split: str) -> list[Path]:
        """Sorted ``*.zarr`` stores of a split; DataError when the split is missing or empty."""
        self._check_root()
        directory = self.root / split
        paths = sorted(directory.glob("*.zarr")) if directory.is_dir() else []
        if not paths:
            raise DataError(f"{directory}: no *.zarr scenes; a dataset needs {' and '.join(SPLITS)} splits")
        return paths

    def _dataset(self, split: str) -> SARFocusingDataset:
        return SARFocusingDataset(
            self.scene_paths(split),
            self.patch_length,
            self.stride,
            scale_blocks=self.scale_blocks,
            seed=self.seed,
            patches_per_block=self.patches_per_block,
            cache_blocks=self.cache_blocks,
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets the stage needs (test uses the validation split)."""
        if stage in ("fit", None) and self.train_set is None:
            self.train_set = self._dataset("training")
        if stage in ("fit", "validate", "test", None) and self.val_set is None:
            self.val_set = self._dataset("validation")
        if stage in ("test", None):
            self.test_set = self.val_set
        if stage == "predict" and self.predict_set is None:
            self.predict_set = SceneTileDataset(
                self.predict_scene_paths(),
                self.patch_length,
                self.predict_overlap,
                scale_blocks=self.scale_blocks,
                seed=self.seed,
                columns_per_tile=self.predict_columns,
            )

    def predict_scene_paths(self) -> list[Path]:
        """Stores named by ``predict_inputs`` (a store or a directory of ``*.zarr``), else the validation split."""
        if not self.predict_inputs:
            return self.scene_paths("validation")
        paths: list[Path] = []
        for path in self.predict_inputs:
            found = sorted(path.glob("*.zarr")) if path.is_dir() and not _is_zarr_store(path) else [path]
            if not found or not found[0].exists():
                raise DataError(f"data.predict_inputs: {path} is neither a .zarr store nor a directory of them")
            paths.extend(found)
        return paths

    def _loader(self, dataset: SARFocusingDataset | None, batch_size: int, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("SARFocusingDataModule.setup() must run before its dataloaders are requested")
        sampler = ChunkAwareSampler(
            dataset.block_ranges,
            shuffle=shuffle,
            seed=self.seed,
            batch_size=batch_size,
            num_workers=self.num_workers,
            mix_blocks=self.mix_blocks if shuffle else 1,
        )
        return split_loader(
            dataset,
            batch_size=batch_size,
            train=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            sampler=sampler,
            multiprocessing_context=self.multiprocessing_context if self.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.val_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """Whole-scene tiles in scene order; each item is already a batch (the columns of one tile)."""
        if self.predict_set is None:
            raise RuntimeError("SARFocusingDataModule.setup('predict') must run before predict_dataloader()")
        return DataLoader(self.predict_set, batch_size=None, shuffle=False, num_workers=self.num_workers,
                          pin_memory=self.pin_memory)


def _is_zarr_store(path: Path) -> bool:
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()
