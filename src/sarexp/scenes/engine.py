"""Whole-scene prediction, shared by every dense system: read a GeoTIFF (or any raster GDAL reads) in blocks,
predict each block, blend, and write outputs on the scene's own grid as Cloud-Optimized GeoTIFFs.

- Blocks of ``block_size`` output pixels overlapping by ``block_overlap`` are predicted one at a time (the
  predictor tiles a block into model-sized windows itself), so memory is bounded by a block, whatever the
  scene size; blocks without a valid input pixel are skipped and written as nodata.
- Finished blocks are kept on disk (:mod:`sarexp.scenes.blocks`): the same command continues a killed
  prediction from them and ends with the same files; a finished scene is skipped (``.<scene>.done.json``).
- The outputs keep the scene's CRS and transform (scaled for coarser output grids); a scene without a CRS is
  predicted with a warning. NaN or ±Inf pixels count as nodata, with a warning giving their number.
- A quicklook PNG is written next to the outputs and sent to the image loggers (:mod:`sarexp.loggers.images`).
"""

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rasterio.transform import Affine
from rasterio.windows import Window

from sarexp.data.tiling import block_windows
from sarexp.errors import ConfigError
from sarexp.io.atomic import write_file_atomically
from sarexp.io.raster import RasterInfo, info_of, open_raster, read_window
from sarexp.loggers.images import log_image, save_png
from sarexp.scenes.assemble import assemble
from sarexp.scenes.blocks import BlockStore, file_identity
from sarexp.scenes.inputs import scene_files
from sarexp.scenes.predictor import ScenePredictor
from sarexp.scenes.progress import SceneProgress

log = logging.getLogger(__name__)


class SceneEngine:
    """Predict scenes with a :class:`ScenePredictor` built from ``predictor`` (a partial taking the loaded
    ``system``, the ``datamodule`` and the ``device``); the target of ``conf/scene/common.yaml``."""

    def __init__(self, predictor: Callable[..., ScenePredictor], output_dir: str, block_size: int = 1024,
                 block_overlap: int = 64, write_size: int = 512, compress: str = "deflate", quicklook: bool = True,
                 quicklook_max_pixels: int = 1024, quicklook_tag: str = "predictions/quicklook",
                 progress: bool = True, device: str = "auto") -> None:
        if block_size < 1 or write_size < 1 or not 0 <= block_overlap < block_size:
            raise ConfigError(f"scene.block_size and scene.write_size must be >= 1 and 0 <= scene.block_overlap < "
                              f"scene.block_size, got {block_size}, {write_size}, {block_overlap}")
        self.make_predictor = predictor
        self.output_dir = Path(output_dir)
        self.block_size, self.block_overlap, self.write_size = block_size, block_overlap, write_size
        self.compress = compress
        self.quicklook, self.quicklook_max_pixels, self.quicklook_tag = quicklook, quicklook_max_pixels, quicklook_tag
        self.show_progress = progress
        self.device = device

    def run(self, system: torch.nn.Module, datamodule: Any, inputs: list[str | Path], checkpoint: Path | None,
            loggers: Any = None) -> dict[str, list[Path]]:
        """Predict every scene of ``inputs`` (files or folders; none: the predictor's default inputs); returns
        scene name → files written. ``loggers`` is anything with ``loggers`` and ``global_step`` (a Trainer),
        for the quicklooks."""
        device = _device(self.device)
        predictor = self.make_predictor(system=system.to(device).eval(), datamodule=datamodule, device=device)
        inputs = list(inputs) or predictor.default_inputs()
        if not inputs:
            raise ConfigError("task=predict needs the scenes to predict: data.predict_inputs=[scene.tif, folder/] "
                              "(GeoTIFFs or any raster GDAL reads)")
        written = {}
        with SceneProgress(self.show_progress) as progress, torch.no_grad():
            for path in scene_files(inputs):
                written[path.name] = self.predict_file(predictor, path, checkpoint, progress, loggers)
        return written

    def predict_file(self, predictor: ScenePredictor, path: Path, checkpoint: Path | None, progress: SceneProgress,
                     loggers: Any = None) -> list[Path]:
        """Predict one scene (resuming its finished blocks); returns the files written."""
        with open_raster(path) as dataset:
            info = info_of(dataset, path)
            if info.crs is None:
                log.warning("%s: no CRS; the outputs copy its pixel grid without georeferencing", path)
            bands = predictor.bind(info)
            shape = (math.ceil(info.height / predictor.scale), math.ceil(info.width / predictor.scale))
            blocks = block_windows(shape, self.block_size, self.block_overlap)
            manifest = {"input": file_identity(path), "checkpoint": file_identity(checkpoint) if checkpoint else None,
                        "predictor": type(predictor).__name__, "settings": predictor.settings(), "bands": bands,
                        "blocks": [self.block_size, self.block_overlap], "write_size": self.write_size,
                        "compress": self.compress}
            targets = {output.suffix: self.output_dir / f"{path.stem}{output.suffix}.tif"
                       for output in predictor.outputs()}
            done_record = self.output_dir / f".{path.stem}.done.json"
            text = json.dumps(manifest, sort_keys=True, default=str)
            if done_record.is_file() and done_record.read_text() == text and all(p.is_file() for p in targets.values()):
                log.info("%s: already predicted with these settings (%s); skipped", path, done_record)
                return list(targets.values())
            store = BlockStore(self.output_dir / f".{path.stem}.partial", manifest)
            predictor.use(_statistics(store, lambda: predictor.prepare(
                lambda: self._scene_blocks(dataset, predictor, blocks, bands, path), info)))
            self._predict_blocks(dataset, predictor, blocks, bands, store, progress, path)
            assemble(store, blocks, predictor.outputs(), predictor.channels, shape, self.block_overlap,
                     self.write_size, info.crs, info.transform @ Affine.scale(predictor.scale), targets,
                     self.compress)
        files = list(targets.values()) + predictor.finish(targets, info)
        if self.quicklook:
            files += self._quicklook(predictor, targets, path.stem, loggers)
        write_file_atomically(done_record, lambda handle: handle.write(text.encode()))
        store.remove()
        log.info("%s → %s", path, ", ".join(str(file) for file in files))
        return files

    def _scene_blocks(self, dataset: Any, predictor: ScenePredictor, blocks: list[tuple[int, int, int, int]],
                      bands: list[int], path: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for block in blocks:
            top, left, height, width = predictor.input_window(block)
            window = read_window(dataset, Window(left, top, width, height), bands, path)
            yield window.values, window.valid

    def _predict_blocks(self, dataset: Any, predictor: ScenePredictor, blocks: list[tuple[int, int, int, int]],
                        bands: list[int], store: BlockStore, progress: SceneProgress, path: Path) -> None:
        counts = [predictor.tile_count(block) for block in blocks]
        pending = [index for index in range(len(blocks)) if not store.done(index)]
        progress.scene(path.name, sum(counts), sum(counts) - sum(counts[index] for index in pending))
        started, nonfinite = time.perf_counter(), 0
        for index, block in enumerate(blocks):
            if store.done(index):
                continue
            top, left, height, width = predictor.input_window(block)
            window = read_window(dataset, Window(left, top, width, height), bands, path)
            nonfinite += window.nonfinite
            if not window.valid.any():
                store.save(index, None)
                progress.advance(counts[index])
                continue
            store.save(index, predictor.predict_block(window.values, window.valid, progress.advance, (top, left)))
        if nonfinite:
            log.warning("%s: %d pixel(s) hold NaN or infinite values; predicted as nodata", path, nonfinite)
        seconds, tiles = time.perf_counter() - started, sum(counts[index] for index in pending)
        log.info("%s: %d tiles in %d block(s), %.1f s, %.2f tiles/s", path, tiles, len(pending), seconds,
                 tiles / max(seconds, 1e-9))

    def _quicklook(self, predictor: ScenePredictor, targets: dict[str, Path], stem: str, loggers: Any) -> list[Path]:
        image = predictor.quicklook(targets, self.quicklook_max_pixels)
        if image is None:
            return []
        path = self.output_dir / f"{stem}.png"
        try:
            pixels = save_png(image, path)
        finally:
            if hasattr(image, "savefig"):
                import matplotlib.pyplot as plt

                plt.close(image)
        if loggers is not None:
            log_image(loggers, f"{self.quicklook_tag}/{stem}", pixels)
        return [path]


def _statistics(store: BlockStore, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The scene statistics a resumed run computed before (``statistics.json`` in the block store), else fresh."""
    path = store.directory / "statistics.json"
    if path.is_file():
        return json.loads(path.read_text())
    statistics = compute()
    write_file_atomically(path, lambda handle: handle.write(json.dumps(statistics).encode()))
    return statistics


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"scene.device={name!r} is not a torch device; use auto, cpu or cuda[:N]") from None
