"""Whole-scene prediction input: overlapping azimuth windows × blocks of range columns, scene by scene.

Each item is already a batch: the columns of one window and one range chunk, (columns, 3, L), so a read
decodes whole zarr chunks once. Items come scene by scene in order, which lets a writer finish a scene as
soon as the next one starts (:class:`sarexp.callbacks.scene_writer.FocusedSceneWriter`). Scenes of any
azimuth length work: windows overlap by `overlap` lines, and a scene shorter than `patch_length` is one
window of its own length (the S4D model takes any length).
"""

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from sarexp.data.sar_scenes import SceneStore, estimate_scale, make_input, open_scene
from sarexp.data.tiling import window_starts


@dataclass(frozen=True)
class Tile:
    scene: int
    start: int
    length: int
    first_column: int
    last_column: int


class SceneTileDataset(Dataset):
    """Tiles of every scene in `scene_paths` (stores need `rc`; `az` is used for quicklooks when present)."""

    def __init__(
        self,
        scene_paths: list[str | os.PathLike[str]],
        patch_length: int,
        overlap: int,
        scale_blocks: int,
        seed: int,
        columns_per_tile: int | None = None,
    ) -> None:
        self.overlap = overlap
        self.paths = [Path(path) for path in scene_paths]
        self.scenes: list[SceneStore] = [open_scene(path) for path in self.paths]
        self.scales = [estimate_scale(scene, scale_blocks, seed) for scene in self.scenes]
        self.tiles = [
            tile
            for index, scene in enumerate(self.scenes)
            for tile in _scene_tiles(index, scene, patch_length, overlap, columns_per_tile)
        ]

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        tile = self.tiles[index]
        scene = self.scenes[tile.scene]
        rc = scene.read("rc", slice(tile.start, tile.start + tile.length), slice(tile.first_column, tile.last_column))
        inputs = make_input(rc, tile.start, scene.shape[0], self.scales[tile.scene])
        location = [tile.scene, tile.start, tile.length, tile.first_column, tile.last_column]
        return {"input": torch.from_numpy(inputs), "tile": torch.tensor(location, dtype=torch.long)}


def _scene_tiles(
    index: int, scene: SceneStore, patch_length: int, overlap: int, columns_per_tile: int | None
) -> list[Tile]:
    n_azimuth, n_range = scene.shape
    length = min(patch_length, n_azimuth)
    width = columns_per_tile or scene.chunks[1]
    return [
        Tile(index, start, length, column, min(column + width, n_range))
        for start in window_starts(n_azimuth, patch_length, overlap)
        for column in range(0, n_range, width)
    ]
