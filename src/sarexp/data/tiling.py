"""Cover an axis or an image with overlapping windows and blend window outputs back into one array: the one
tiling/blending module of sarexp.

Used to run a sequence model over whole scenes (SSM4SAR: windows of the training length, overlapping so that
every output sample can be taken from a window in which it is far from the window's ends, where a focusing
model lacks half of the synthetic aperture), image models over whole images (MST++ validation) and every
dense system over whole GeoTIFF scenes (:mod:`sarexp.scenes`: tiles inside blocks, and the blocks themselves).
"""

import numpy as np


def window_starts(size: int, length: int, overlap: int) -> list[int]:
    """Starts of windows of `length` covering [0, size) with at least `overlap` samples shared by neighbours.

    A size shorter than `length` is covered by a single window of `size` (the caller shortens it).
    """
    if length < 1 or not 0 <= overlap < length:
        raise ValueError(f"need length >= 1 and 0 <= overlap < length, got length={length}, overlap={overlap}")
    if size <= length:
        return [0]
    step = length - overlap
    starts = list(range(0, size - length + 1, step))
    if starts[-1] + length < size:
        starts.append(size - length)
    return starts


def blend_weights(length: int, start: int, size: int, margin: int, edge_weight: float) -> np.ndarray:
    """Weight of each sample of a window when overlapping windows are averaged.

    Samples within `margin` of a window end that is not a scene end get `edge_weight` (small), the rest 1,
    so each output comes from the window where it is most central, while a sample covered only by a
    window margin still gets a value.
    """
    weights = np.ones(length, dtype=np.float32)
    if start > 0:
        weights[:margin] = edge_weight
    if start + length < size:
        weights[length - margin:] = edge_weight
    return weights


def ramp_weights(length: int, start: int, size: int, margin: int, edge_weight: float) -> np.ndarray:
    """Feathering weights: over `margin` samples at a window end that is not a scene end, a linear ramp from
    `edge_weight` up to 1 (1 in the middle). Neighbouring windows cross-fade through their overlap instead of
    switching at its middle, which hides a seam where two windows disagree (blocks of a diffusion model)."""
    weights = np.ones(length, dtype=np.float32)
    margin = min(margin, length // 2)
    if margin > 0:
        ramp = np.maximum((np.arange(margin, dtype=np.float32) + 0.5) / margin, edge_weight)
        if start > 0:
            weights[:margin] = ramp
        if start + length < size:
            weights[length - margin:] = np.minimum(weights[length - margin:], ramp[::-1])
    return weights


def grid_windows(shape: tuple[int, int], length: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of windows of `length` covering a 2-D `shape` with `overlap` shared by
    neighbours on both axes (row-major). Along an axis shorter than `length` one window of the axis' size."""
    rows = window_starts(shape[0], length, overlap)
    cols = window_starts(shape[1], length, overlap)
    height, width = min(length, shape[0]), min(length, shape[1])
    return [(top, left, height, width) for top in rows for left in cols]


def block_windows(shape: tuple[int, int], length: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of blocks of up to `length` covering a 2-D `shape`, neighbours sharing exactly
    `overlap` (row-major). Unlike :func:`grid_windows` the last block along an axis is cut at the end instead of
    moved back to end there, so no work is repeated: for blocks that are predicted and stored, not network tiles."""
    if length < 1 or not 0 <= overlap < length:
        raise ValueError(f"need length >= 1 and 0 <= overlap < length, got length={length}, overlap={overlap}")

    def starts(size: int) -> list[int]:
        found = [0]
        while found[-1] + length < size:
            found.append(found[-1] + length - overlap)
        return found

    return [(top, left, min(length, shape[0] - top), min(length, shape[1] - left))
            for top in starts(shape[0]) for left in starts(shape[1])]


def window_weights(window: tuple[int, int, int, int], shape: tuple[int, int], margin: int, edge_weight: float,
                   profile: str = "step") -> np.ndarray:
    """(height, width) blending weights of a 2-D window: the outer product of the 1-D weights of its rows and
    columns (`profile` "step": :func:`blend_weights`, "linear": :func:`ramp_weights`)."""
    weights_1d = {"step": blend_weights, "linear": ramp_weights}[profile]
    top, left, height, width = window
    return np.outer(weights_1d(height, top, shape[0], margin, edge_weight),
                    weights_1d(width, left, shape[1], margin, edge_weight))


class Canvas:
    """Weighted average of overlapping windows of (C, h, w) arrays over a (C, H, W) region: add each window
    with its weights, then :meth:`result` divides; pixels no window covered come out as NaN."""

    def __init__(self, channels: int, shape: tuple[int, int]) -> None:
        self.total = np.zeros((channels, *shape), dtype=np.float32)
        self.weight = np.zeros(shape, dtype=np.float32)

    def add(self, values: np.ndarray, weights: np.ndarray, top: int, left: int) -> None:
        """Add `values` (C, h, w) at (top, left) with `weights` (h, w); NaN values count as missing."""
        height, width = weights.shape
        present = np.isfinite(values).all(axis=0)
        weights = np.where(present, weights, 0.0).astype(np.float32)
        region = (slice(top, top + height), slice(left, left + width))
        self.total[(slice(None), *region)] += np.where(present, values, 0.0) * weights
        self.weight[region] += weights

    def result(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.weight > 0, self.total / self.weight, np.nan).astype(np.float32)
