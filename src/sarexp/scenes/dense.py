"""Image-to-image networks over a block: tiles of the training size, batched, blended back.

Tiles of ``tile`` pixels overlap by ``overlap``; as in the MST++ validation protocol
(:func:`sarexp.metrics.spectral.whole_image_forward`), a pixel within ``overlap // 2`` of an inner tile edge
gets weight 1e-3, so each output comes from the tile where it is most central (at a tile's centre the
prediction is exactly the network's output on that tile). A block smaller than a tile is padded by mirroring.
Invalid input pixels are filled with the block's mean of each channel before the network sees them and come
out as NaN; tiles without a valid pixel are not run.
"""

from abc import abstractmethod
from typing import Any

import numpy as np
import torch

from sarexp.data.tiling import Canvas, grid_windows, window_weights
from sarexp.errors import ConfigError
from sarexp.scenes.predictor import Advance, ScenePredictor

EDGE_WEIGHT = 1e-3


def fill_invalid(inputs: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``inputs`` (C, H, W) float32 with invalid pixels set to each channel's mean over the valid ones."""
    if valid.all():
        return inputs
    means = inputs[:, valid].mean(axis=1) if valid.any() else np.zeros(inputs.shape[0], np.float32)
    return np.where(valid[None], inputs, means[:, None, None].astype(np.float32))


class DenseTiles(ScenePredictor):
    """Base of dense predictors: subclasses map raw values to network input and run a batch of tiles."""

    def __init__(self, tile: int, overlap: int, batch_size: int, device: torch.device) -> None:
        if tile < 1 or batch_size < 1 or not 0 <= overlap < tile:
            raise ConfigError(f"scene.predictor needs tile >= 1, batch_size >= 1 and 0 <= overlap < tile, got tile="
                              f"{tile}, overlap={overlap}, batch_size={batch_size}")
        self.tile, self.overlap, self.batch_size, self.device = tile, overlap, batch_size, device

    def settings(self) -> dict[str, Any]:
        return {"tile": self.tile, "overlap": self.overlap}

    @abstractmethod
    def model_input(self, values: np.ndarray) -> np.ndarray:
        """float32 (C, H, W) network input of raw values (stored dtype)."""

    @abstractmethod
    def run_tiles(self, tiles: torch.Tensor) -> torch.Tensor:
        """The network on (B, C, tile, tile) on the device → (B, channels, tile, tile)."""

    def _padded(self, shape: tuple[int, int]) -> tuple[int, int]:
        return max(shape[0], self.tile), max(shape[1], self.tile)

    def tile_count(self, block: tuple[int, int, int, int]) -> int:
        _, _, height, width = self.input_window(block)
        return len(grid_windows(self._padded((height, width)), self.tile, self.overlap))

    def predict_block(self, values: np.ndarray, valid: np.ndarray, advance: Advance,
                      origin: tuple[int, int] = (0, 0)) -> np.ndarray:
        height, width = valid.shape
        inputs = fill_invalid(self.model_input(values), valid)
        padded = self._padded((height, width))
        pad = ((0, padded[0] - height), (0, padded[1] - width))
        inputs = np.pad(inputs, ((0, 0), *pad), mode="symmetric")
        valid = np.pad(valid, pad, constant_values=False)
        windows = grid_windows(padded, self.tile, self.overlap)
        canvas = Canvas(self.channels, padded)
        used = [w for w in windows if valid[w[0]:w[0] + w[2], w[1]:w[1] + w[3]].any()]
        advance(len(windows) - len(used))
        for start in range(0, len(used), self.batch_size):
            batch = used[start:start + self.batch_size]
            tiles = np.stack([inputs[:, t:t + h, l:l + w] for t, l, h, w in batch])
            outputs = self.run_tiles(torch.from_numpy(tiles).to(self.device)).float().cpu().numpy()
            for window, output in zip(batch, outputs):
                canvas.add(output, window_weights(window, padded, self.overlap // 2, EDGE_WEIGHT), *window[:2])
            advance(len(batch))
        result = canvas.result()[:, :height, :width]
        result[:, ~valid[:height, :width]] = np.nan
        return result
