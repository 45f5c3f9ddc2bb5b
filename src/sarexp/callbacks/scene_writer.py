"""Stitch tile predictions into focused scenes: `<output_dir>/<scene>.zarr` (array `az`) and a PNG quicklook
(also logged to every logger, TensorBoard and W&B, under `<quicklook_tag>/<scene>`).

Tiles of a scene are blended with weights that favour each window's centre (sarexp.data.tiling; the margin
is half the tiles' overlap, so each line is taken from the window where it is most central), scaled
back to the scene's units with the input's normalisation scale, and written in the dataset's layout
(complex64 `az`, same chunks and attributes as the input) through a temporary store and a rename, so an
interrupted prediction never leaves a half-written scene.
"""

import shutil
from pathlib import Path
from typing import Any, Sequence

import lightning.pytorch as pl
import matplotlib.pyplot as plt
import numpy as np
import zarr
from lightning.pytorch.callbacks import BasePredictionWriter

from sarexp.data.sar_scenes import output_to_complex
from sarexp.data.scene_tiles import SceneTileDataset
from sarexp.data.tiling import blend_weights
from sarexp.loggers.images import save_and_log_image
from sarexp.plotting.focusing import plot_scene_quicklook
from sarexp.io.atomic import describe_write_error
from sarexp.errors import StorageError


class _SceneAccumulator:
    def __init__(self, shape: tuple[int, int]) -> None:
        self.weighted_sum = np.zeros(shape, dtype=np.complex128)
        self.weight = np.zeros(shape, dtype=np.float64)


class FocusedSceneWriter(BasePredictionWriter):
    """Prediction writer for SSM4SAR scenes (expects the tiles of :class:`SceneTileDataset`)."""

    def __init__(
        self,
        output_dir: str,
        edge_weight: float = 1e-3,
        quicklook: bool = True,
        quicklook_max_pixels: int = 1024,
        quicklook_dynamic_range_db: float = 50.0,
        quicklook_tag: str = "predictions/quicklook",
    ) -> None:
        super().__init__(write_interval="batch_and_epoch")
        self.output_dir = Path(output_dir)
        self.edge_weight = edge_weight
        self.quicklook = quicklook
        self.quicklook_max_pixels = quicklook_max_pixels
        self.quicklook_dynamic_range_db = quicklook_dynamic_range_db
        self.quicklook_tag = quicklook_tag
        self._scene: int | None = None
        self._accumulator: _SceneAccumulator | None = None

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: dict[str, Any],
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        dataset = _tile_dataset(trainer)
        scene, start, length, first, last = (int(v) for v in prediction["tile"].view(-1))
        if scene != self._scene:
            self._finish(trainer, dataset)
            self._scene = scene
            self._accumulator = _SceneAccumulator(dataset.scenes[scene].shape)
        focused = output_to_complex(prediction["preds"].float(), dataset.scales[scene])  # (length, columns)
        n_azimuth = dataset.scenes[scene].shape[0]
        margin = dataset.overlap // 2
        weights = blend_weights(length, start, n_azimuth, margin, self.edge_weight)[:, None]
        self._accumulator.weighted_sum[start:start + length, first:last] += weights * focused
        self._accumulator.weight[start:start + length, first:last] += weights

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Sequence[Any],
        batch_indices: Sequence[Any],
    ) -> None:
        self._finish(trainer, _tile_dataset(trainer))

    def _finish(self, trainer: pl.Trainer, dataset: SceneTileDataset) -> None:
        if self._scene is None or self._accumulator is None:
            return
        scene = dataset.scenes[self._scene]
        focused = (self._accumulator.weighted_sum / self._accumulator.weight).astype(np.complex64)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        name = scene.path.name
        _write_store(self.output_dir / name, focused, scene.chunks, {**scene.attrs, "source": str(scene.path)})
        if self.quicklook:
            self._write_quicklook(trainer, Path(name).stem, scene, focused)
        self._scene, self._accumulator = None, None

    def _write_quicklook(self, trainer: pl.Trainer, stem: str, scene: Any, focused: np.ndarray) -> None:
        full = (slice(0, scene.shape[0]), slice(0, scene.shape[1]))
        reference = scene.read("az", *full) if scene.az is not None else None
        panels = [_amplitude_for_display(a, self.quicklook_max_pixels) if a is not None else None
                  for a in (scene.read("rc", *full), focused, reference)]
        figure = plot_scene_quicklook(*panels, dynamic_range_db=self.quicklook_dynamic_range_db)
        try:
            save_and_log_image(trainer, f"{self.quicklook_tag}/{stem}", figure, self.output_dir / f"{stem}.png")
        finally:
            plt.close(figure)


def _tile_dataset(trainer: pl.Trainer) -> SceneTileDataset:
    loaders = trainer.predict_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    return loader.dataset


def _write_store(path: Path, az: np.ndarray, chunks: tuple[int, int], attrs: dict[str, Any]) -> None:
    staging = path.with_name(f".{path.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        group = zarr.open_group(staging, mode="w")
        group.attrs.update(attrs)
        array = group.create_array("az", shape=az.shape, dtype=az.dtype, chunks=chunks)
        array[...] = az
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise StorageError(describe_write_error(path, error)) from None
    shutil.rmtree(path, ignore_errors=True)
    staging.rename(path)


def _amplitude_for_display(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Amplitude of a complex image, shrunk to at most `max_pixels` per side by averaging power in blocks."""
    factors = [max(1, -(-size // max_pixels)) for size in image.shape]
    rows, cols = (size // f * f for size, f in zip(image.shape, factors))
    power = np.abs(image[:rows, :cols]) ** 2
    blocks = power.reshape(rows // factors[0], factors[0], cols // factors[1], factors[1]).mean(axis=(1, 3))
    return np.sqrt(blocks).astype(np.float32)
