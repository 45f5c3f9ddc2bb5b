"""Datasets over ARAD-1K scenes: training patches, whole images, prediction inputs.

Scenes are held by a :class:`SceneStore`: ``standard`` reads every cube and RGB image once (the seed's
default, about 30 MB per real scene), ``lazy`` reads on demand through a least-recently-used cache of
``cache_size`` scenes. With DataLoader workers every worker holds its own copy of the store, so the
cache is per worker (the seed's MST_MEMORY_MODE=lazy, MST_LAZY_CACHE_SIZE).
"""

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sarexp.data.arad_files import cube_size, read_cube, read_rgb, rgb_size
from sarexp.errors import ConfigError, DataError

MEMORY_MODES = ("standard", "lazy")


class SceneStore:
    """(rgb (3, H, W), hsi (bands, H, W)) float32 pairs of named scenes, in memory or through an LRU cache."""

    def __init__(self, names: list[str], cube_paths: list[Path], rgb_paths: list[Path], bands: int,
                 memory_mode: str = "standard", cache_size: int = 3) -> None:
        if memory_mode not in MEMORY_MODES:
            raise ConfigError(f"data.memory_mode must be one of {list(MEMORY_MODES)}, got {memory_mode!r}")
        if cache_size < 1:
            raise ConfigError(f"data.lazy_cache_size must be a positive integer, got {cache_size}")
        self.names = names
        self.cube_paths = cube_paths
        self.rgb_paths = rgb_paths
        self.bands = bands
        self.cache_size = cache_size
        self.lazy = memory_mode == "lazy"
        self.cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.loaded = None if self.lazy else [self._read(index) for index in range(len(names))]
        self.shapes = [self._header_shape(index) for index in range(len(names))] if self.lazy else \
            [hsi.shape[1:] for _, hsi in self.loaded]

    def __len__(self) -> int:
        return len(self.names)

    def _mismatch(self, index: int, rgb_shape: tuple[int, ...], hsi_shape: tuple[int, ...]) -> DataError:
        return DataError(f"{self.rgb_paths[index]}: RGB is {rgb_shape[0]}×{rgb_shape[1]} but its cube "
                         f"{self.cube_paths[index]} is {hsi_shape[0]}×{hsi_shape[1]}; they must match")

    def _header_shape(self, index: int) -> tuple[int, int]:
        """(H, W) from the files' headers only (lazy mode), checking that RGB and cube agree."""
        hsi_shape = cube_size(self.cube_paths[index], self.bands)
        rgb_shape = rgb_size(self.rgb_paths[index])
        if rgb_shape != hsi_shape:
            raise self._mismatch(index, rgb_shape, hsi_shape)
        return hsi_shape

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        hsi = read_cube(self.cube_paths[index], self.bands)
        rgb = read_rgb(self.rgb_paths[index])
        if rgb.shape[1:] != hsi.shape[1:]:
            raise self._mismatch(index, rgb.shape[1:], hsi.shape[1:])
        return rgb, hsi

    def scene(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The scene's (rgb, hsi); in lazy mode the least recently used scene leaves a full cache."""
        if self.loaded is not None:
            return self.loaded[index]
        if index in self.cache:
            self.cache.move_to_end(index)
            return self.cache[index]
        pair = self._read(index)
        self.cache[index] = pair
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return pair

    def shape(self, index: int) -> tuple[int, int]:
        return tuple(self.shapes[index])


class PatchDataset(Dataset):
    """``patch_size`` × ``patch_size`` patches every ``stride`` pixels of every scene (MST++: 128 every 8).

    A scene of H × W gives ((H − p) // s + 1) × ((W − p) // s + 1) patches, row-major, scene after scene.
    """

    def __init__(self, store: SceneStore, patch_size: int, stride: int) -> None:
        self.store = store
        self.patch_size = patch_size
        self.stride = stride
        self.grid: list[tuple[int, int]] = []
        for index in range(len(store)):
            height, width = store.shape(index)
            if height < patch_size or width < patch_size:
                raise ConfigError(f"data.patch_size={patch_size} is larger than scene {store.names[index]} "
                                  f"({height}×{width}); lower data.patch_size")
            self.grid.append(((height - patch_size) // stride + 1, (width - patch_size) // stride + 1))
        self.offsets = np.cumsum([0] + [rows * cols for rows, cols in self.grid])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> dict[str, object]:
        scene = int(np.searchsorted(self.offsets, index, side="right") - 1)
        within = index - int(self.offsets[scene])
        row, col = divmod(within, self.grid[scene][1])
        top, left = row * self.stride, col * self.stride
        rgb, hsi = self.store.scene(scene)
        window = (slice(None), slice(top, top + self.patch_size), slice(left, left + self.patch_size))
        return {"rgb": torch.from_numpy(np.ascontiguousarray(rgb[window])),
                "hsi": torch.from_numpy(np.ascontiguousarray(hsi[window])), "name": self.store.names[scene]}


class ImageDataset(Dataset):
    """Whole scenes (validation and test: the MST++ protocol puts the whole image through the model)."""

    def __init__(self, store: SceneStore) -> None:
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> dict[str, object]:
        rgb, hsi = self.store.scene(index)
        return {"rgb": torch.from_numpy(rgb), "hsi": torch.from_numpy(hsi), "name": self.store.names[index]}


class PredictDataset(Dataset):
    """RGB images to reconstruct, with their reference cube when ``<spec_dir>/<stem>.mat`` exists."""

    def __init__(self, rgb_paths: list[Path], spec_dir: Path | None, bands: int) -> None:
        self.rgb_paths = rgb_paths
        self.spec_dir = spec_dir
        self.bands = bands

    def __len__(self) -> int:
        return len(self.rgb_paths)

    def __getitem__(self, index: int) -> dict[str, object]:
        path = self.rgb_paths[index]
        item: dict[str, object] = {"rgb": torch.from_numpy(read_rgb(path)), "name": path.stem}
        reference = self.spec_dir / f"{path.stem}.mat" if self.spec_dir is not None else None
        if reference is not None and reference.is_file():
            hsi = read_cube(reference, self.bands)
            if hsi.shape[1:] != item["rgb"].shape[1:]:
                raise DataError(f"{path}: RGB size {tuple(item['rgb'].shape[1:])} differs from its cube "
                                f"{reference} {hsi.shape[1:]}")
            item["hsi"] = torch.from_numpy(hsi)
        return item
