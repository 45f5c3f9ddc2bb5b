"""Map raw pixel values to the [−1, 1] range diffusion models are trained in, one rule per kind of data.

Diffusion models add unit-variance Gaussian noise to images in [−1, 1], so every reader turns what it
reads into that range with one of three rules (``data.scaling``):

- ``unit`` — integer images (8-bit or 16-bit PNG, TIFF, JPEG, integer HDF5): ``2·x/max − 1`` with ``max``
  the largest value of the stored integer type (255, 65535); float images must already lie in [0, 1].
  SAR amplitude or σ0-in-dB vignettes stored as 8/16-bit images use this rule.
- ``range`` — any values in physical units (float TIFF of σ0 in dB, HDF5 of displacement in mm): linear map of
  ``data.value_range = [low, high]`` onto [−1, 1], values outside clipped.
- ``phase`` — wrapped interferometric phase in radians (float data; integer data is first mapped from
  ``data.value_range`` onto [−π, π)): each phase channel becomes two channels, cos φ and sin φ. Both are
  in [−1, 1] already, and −π and π give the same pair, so the model never sees a jump at the wrap.
  ``phase_from_cos_sin`` (atan2) turns generated pairs back into phase.
"""

from collections.abc import Sequence
from typing import Literal

import numpy as np

from sarexp.data.input_checks import check_finite
from sarexp.errors import ConfigError, DataError

ScalingMode = Literal["unit", "range", "phase"]
SCALING_MODES: tuple[str, ...] = ("unit", "range", "phase")


class ImageScaling:
    """Turn a raw (C, H, W) array into float32 model input in [−1, 1] according to ``mode``."""

    def __init__(self, mode: ScalingMode = "unit", value_range: Sequence[float] | None = None) -> None:
        if mode not in SCALING_MODES:
            raise ConfigError(f"data.scaling must be one of {', '.join(SCALING_MODES)}, got {mode!r}")
        if value_range is not None:
            if len(value_range) != 2 or not float(value_range[0]) < float(value_range[1]):
                raise ConfigError(f"data.value_range must be [low, high] with low < high, got {list(value_range)}")
            value_range = (float(value_range[0]), float(value_range[1]))
        if mode == "range" and value_range is None:
            raise ConfigError("data.scaling=range needs data.value_range=[low, high] in the data's units")
        self.mode = mode
        self.value_range = value_range

    def output_channels(self, stored_channels: int) -> int:
        """Channels the model sees for ``stored_channels`` channels on disk (phase doubles them)."""
        return 2 * stored_channels if self.mode == "phase" else stored_channels

    def __call__(self, raw: np.ndarray, source: str = "") -> np.ndarray:
        """Scale ``raw`` (C, H, W); ``source`` names the file in errors (NaN or Inf included)."""
        check_finite(raw, source)
        if self.mode == "unit":
            return _unit(raw, source)
        if self.mode == "range":
            return _linear(raw, self.value_range, (-1.0, 1.0))
        phase = raw.astype(np.float32)
        if np.issubdtype(raw.dtype, np.integer):
            if self.value_range is None:
                raise ConfigError(
                    f"{source}: integer phase data needs data.value_range=[low, high], the codes of −π and π"
                )
            phase = _linear(raw, self.value_range, (-np.pi, np.pi))
        return np.concatenate([np.cos(phase), np.sin(phase)], axis=0).astype(np.float32)


def _unit(raw: np.ndarray, source: str) -> np.ndarray:
    if raw.dtype == np.bool_:
        return raw.astype(np.float32) * 2.0 - 1.0
    if np.issubdtype(raw.dtype, np.integer):
        return (raw.astype(np.float32) / float(np.iinfo(raw.dtype).max)) * 2.0 - 1.0
    values = raw.astype(np.float32)
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise DataError(
            f"{source}: float image with values in [{values.min():.3g}, {values.max():.3g}], not [0, 1]; "
            "set data.scaling=range and data.value_range=[low, high]"
        )
    return values * 2.0 - 1.0


def _linear(raw: np.ndarray, source_range: tuple[float, float], target: tuple[float, float]) -> np.ndarray:
    low, high = source_range
    unit = np.clip((raw.astype(np.float64) - low) / (high - low), 0.0, 1.0)
    return (target[0] + unit * (target[1] - target[0])).astype(np.float32)


def phase_from_cos_sin(images: np.ndarray, channel_axis: int = 1) -> np.ndarray:
    """Wrapped phase in (−π, π] from stacked cos/sin channels (first half cos, second half sin)."""
    cos, sin = np.split(images, 2, axis=channel_axis)
    return np.arctan2(sin, cos)
