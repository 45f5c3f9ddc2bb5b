"""What the scene engine asks of a system: read these bands, predict this block, write these outputs.

A predictor is configured in ``conf/scene/<name>.yaml`` (``scene.predictor``, a partial) and built by the
engine with the loaded system and the data module, so the input mapping is the training data's own.
The engine cuts the scene's output grid into blocks and hands each block's input window to
:meth:`ScenePredictor.predict_block`; everything a predictor returns is float32 with NaN where it predicts
nothing (nodata in, nodata out). Outputs are derived from the blended block predictions by
:class:`SceneOutput` converters (probabilities → label map, [−1, 1] → 8-bit RGB, …).
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sarexp.io.cog import RasterSpec
from sarexp.io.raster import RasterInfo

Advance = Callable[[int], None]  # called with the number of tiles just finished (the progress bar)


@dataclass(frozen=True)
class SceneOutput:
    """One output file ``<scene><suffix>.tif``: its bands (``spec``) and how the blended float32 prediction
    (bands, h, w; NaN = none) becomes them: ``convert`` returns (values in spec.dtype, valid (h, w))."""

    suffix: str
    spec: RasterSpec
    convert: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def float_output(suffix: str, descriptions: list[str], tags: dict[str, str] | None = None) -> SceneOutput:
    """float32 bands as predicted, NaN as nodata."""
    def convert(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return values, np.isfinite(values).all(axis=0)

    spec = RasterSpec(len(descriptions), "float32", float("nan"), tuple(descriptions), tags=dict(tags or {}))
    return SceneOutput(suffix, spec, convert)


class ScenePredictor(ABC):
    """Base of the per-system predictors: input bands, the output grid's scale, per-block prediction."""

    scale: int = 1        # one output pixel covers scale × scale input pixels
    channels: int         # bands of what predict_block returns

    @abstractmethod
    def bind(self, info: RasterInfo) -> list[int]:
        """Check the scene (DataError naming the file) and return the 1-based input bands to read."""

    def prepare(self, read: Callable[[], Any], info: RasterInfo) -> dict[str, Any]:
        """Statistics of the whole scene the input mapping needs (JSON values, kept in the block manifest so a
        resumed run uses the same); ``read()`` iterates over (values, valid) of the scene in blocks."""
        return {}

    def use(self, statistics: dict[str, Any]) -> None:
        """Take the statistics of :meth:`prepare` (fresh or from a resumed run's manifest)."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Every setting that changes the prediction (a resumed run with other settings starts over)."""

    def input_window(self, block: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the input pixels a block of the output grid needs."""
        top, left, height, width = block
        return top * self.scale, left * self.scale, height * self.scale, width * self.scale

    @abstractmethod
    def tile_count(self, block: tuple[int, int, int, int]) -> int:
        """Model tiles (or windows) a block takes: the progress bar's unit."""

    @abstractmethod
    def predict_block(self, values: np.ndarray, valid: np.ndarray, advance: Advance,
                      origin: tuple[int, int] = (0, 0)) -> np.ndarray:
        """float32 (bands, h, w) of the block whose input window is ``values`` (C, H, W, stored dtype) with
        ``valid`` (H, W), its upper-left pixel at ``origin`` (row, column) of the scene; NaN where nothing is
        predicted."""

    @abstractmethod
    def outputs(self) -> list[SceneOutput]:
        """The files written per scene."""

    def quicklook(self, outputs: dict[str, Path], max_pixels: int) -> Any:
        """A picture of the result (an RGB uint8 array or a matplotlib figure), or None."""
        return None

    def default_inputs(self) -> list[Path]:
        """Scenes to predict when ``data.predict_inputs`` is empty (none: the task asks for them)."""
        return []

    def finish(self, outputs: dict[str, Path], info: RasterInfo) -> list[Path]:
        """Extra files derived from the published outputs (e.g. the ARAD .mat of a cube)."""
        return []


def quicklook_shape(shape: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """A raster's shape shrunk by a whole factor to at most ``max_pixels`` per side (GDAL reads it from the
    overviews)."""
    factor = max(1, -(-max(shape) // max_pixels))
    return -(-shape[0] // factor), -(-shape[1] // factor)
