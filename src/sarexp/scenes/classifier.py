"""Sentinel-1 scenes → class-probability maps with a patch classifier (MixMAE on BigEarthNet, SEN12-FLOOD).

The classifier was trained on ``window`` × ``window`` patches (BigEarthNet: 120 × 120 at 10 m; SEN12-FLOOD:
512 × 512 date pairs). Output pixel (i, j) covers input pixels [i·s, (i+1)·s) × [j·s, (j+1)·s) for the
``stride`` s, and holds the class probabilities of the window of ``window`` pixels centred on that cell
(start i·s + ⌊(s − window)/2⌋): an output grid ``stride`` times coarser than the scene, on the same CRS and
origin (transform × scale(s)), so it lands on the scene in a GIS. Windows with less than
``min_valid_fraction`` valid pixels are nodata; the invalid pixels of the other windows are filled with the
window's mean of each band (in dB).

Input: ``bands`` in the model's channel order, ``dates`` groups of them for multi-temporal models (SEN12-FLOOD:
4 bands = date 1 VH, VV, date 2 VH, VV, e.g. ``gdalbuildvrt -separate pair.vrt`` of four single-band files);
``units`` (db | linear | amplitude, :mod:`sarexp.scenes.inputs`) turned into dB, then the training data's own
mapping (the data module's batch transform: resize to ``data.image_size``, (dB − mean) / std).
Outputs: ``<scene>.tif`` float32, one band per class (descriptions = class names), NaN nodata; with more
than one class, ``<scene>_labels.tif`` uint8 most probable class (255 nodata) with a colour table.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from numpy.lib.stride_tricks import sliding_window_view

from sarexp.errors import ConfigError, DataError
from sarexp.io.cog import RasterSpec
from sarexp.io.raster import RasterInfo, open_raster
from sarexp.scenes.inputs import check_units, resolve_bands, to_db
from sarexp.scenes.predictor import Advance, SceneOutput, ScenePredictor, float_output, quicklook_shape

NO_LABEL = 255


def window_fractions(valid: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Fraction of valid pixels in every ``window`` × ``window`` window at steps of ``stride`` (integral image)."""
    integral = np.pad(valid.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    rows = np.arange(0, valid.shape[0] - window + 1, stride)
    cols = np.arange(0, valid.shape[1] - window + 1, stride)
    top, left = np.ix_(rows, cols)
    total = (integral[top + window, left + window] - integral[top, left + window] - integral[top + window, left]
             + integral[top, left])
    return total / float(window * window)


def label_colormap(count: int) -> dict[int, tuple[int, int, int, int]]:
    """Distinct colours for ``count`` classes (matplotlib's tab20), nodata transparent black."""
    palette = colormaps["tab20"].resampled(max(count, 2))
    table = {index: tuple(int(round(255 * c)) for c in palette(index)[:3]) + (255,) for index in range(count)}
    table[NO_LABEL] = (0, 0, 0, 0)
    return table


class WindowClassifier(ScenePredictor):
    """A patch classifier (``system.net``: logits; ``system.probabilities``) slid over scenes."""

    def __init__(self, system: torch.nn.Module, datamodule: Any, device: torch.device, class_names: Sequence[str],
                 window: int = 120, stride: int = 60, bands: Sequence[str | int] = ("VH", "VV"), dates: int = 1,
                 units: str = "db", calibration: float = 1.0, floor: float = 1e-6, min_valid_fraction: float = 0.5,
                 batch_size: int = 64) -> None:
        if window < 1 or not 1 <= stride <= window or batch_size < 1 or dates < 1 or len(bands) % dates:
            raise ConfigError(f"scene.predictor needs window >= stride >= 1, batch_size >= 1 and the bands split into "
                              f"dates equal groups, got window={window}, stride={stride}, batch_size={batch_size}, "
                              f"bands={list(bands)}, dates={dates}")
        if not 0.0 < min_valid_fraction <= 1.0:
            raise ConfigError(f"scene.predictor.min_valid_fraction must be in (0, 1], got {min_valid_fraction}")
        check_units(units, calibration, floor)
        self.system, self.transform, self.device = system, datamodule.transform, device
        self.class_names = [str(name) for name in class_names]
        self.channels = len(self.class_names)
        self.window, self.scale, self.wanted, self.dates = window, stride, list(bands), dates
        self.units, self.calibration, self.floor = units, calibration, floor
        self.min_valid_fraction, self.batch_size = min_valid_fraction, batch_size

    def bind(self, info: RasterInfo) -> list[int]:
        return resolve_bands(info, self.wanted)

    def settings(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in ("class_names", "window", "scale", "wanted", "dates", "units",
                                                   "calibration", "floor", "min_valid_fraction")}

    def input_window(self, block: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        top, left, height, width = block
        offset = (self.scale - self.window) // 2
        return (top * self.scale + offset, left * self.scale + offset, (height - 1) * self.scale + self.window,
                (width - 1) * self.scale + self.window)

    def tile_count(self, block: tuple[int, int, int, int]) -> int:
        return block[2] * block[3]

    def predict_block(self, values: np.ndarray, valid: np.ndarray, advance: Advance,
                      origin: tuple[int, int] = (0, 0)) -> np.ndarray:
        db = to_db(values, self.units, self.calibration, self.floor)
        windows = sliding_window_view(db, (self.window, self.window), axis=(1, 2))[:, ::self.scale, ::self.scale]
        masks = sliding_window_view(valid, (self.window, self.window))[::self.scale, ::self.scale]
        fractions = window_fractions(valid, self.window, self.scale)
        result = np.full((self.channels, *fractions.shape), np.nan, dtype=np.float32)
        chosen = np.argwhere(fractions >= self.min_valid_fraction)
        advance(fractions.size - len(chosen))
        for start in range(0, len(chosen), self.batch_size):
            rows, cols = chosen[start:start + self.batch_size].T
            patches, inside = windows[:, rows, cols].transpose(1, 0, 2, 3), masks[rows, cols][:, None]
            sums = np.where(inside, patches, 0.0).sum(axis=(2, 3), keepdims=True)
            means = sums / inside.sum(axis=(2, 3), keepdims=True)
            patches = np.where(inside, patches, means).astype(np.float32)
            result[:, rows, cols] = self._probabilities(patches).T
            advance(len(rows))
        return result

    def _probabilities(self, patches: np.ndarray) -> np.ndarray:
        """(B, channels) probabilities of (B, bands, window, window) patches in dB."""
        image_db = torch.from_numpy(patches).to(self.device)
        if self.dates > 1:
            image_db = image_db.reshape(len(patches), self.dates, -1, self.window, self.window)
        image = self.transform({"image_db": image_db}, training=False)["image"]
        probabilities = self.system.probabilities(self.system(image))
        return probabilities.reshape(len(patches), -1).float().cpu().numpy()

    def outputs(self) -> list[SceneOutput]:
        outputs = [float_output("", self.class_names)]
        if self.channels > 1:
            def labels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                valid = np.isfinite(values).all(axis=0)
                best = np.argmax(np.nan_to_num(values, nan=-1.0), axis=0)
                return np.where(valid, best, NO_LABEL).astype(np.uint8)[None], valid

            names = {f"CLASS_{index}": name for index, name in enumerate(self.class_names)}
            spec = RasterSpec(1, "uint8", NO_LABEL, ("most probable class",), label_colormap(self.channels),
                              resampling="nearest", tags=names)
            outputs.append(SceneOutput("_labels", spec, labels))
        return outputs

    def quicklook(self, outputs: dict[str, Path], max_pixels: int) -> np.ndarray:
        """The label map in its colours, or the probability as grey for one class (nodata black)."""
        path = outputs.get("_labels", outputs[""])
        with open_raster(path) as dataset:
            band = dataset.read(1, out_shape=quicklook_shape(dataset.shape, max_pixels))
        if "_labels" in outputs:
            table = np.array([label_colormap(self.channels).get(index, (0, 0, 0, 0))[:3] for index in range(256)],
                             dtype=np.uint8)
            return table[band]
        return np.nan_to_num(np.clip(band, 0.0, 1.0) * 255.0).astype(np.uint8)
