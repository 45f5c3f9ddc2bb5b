"""Cover a long axis with overlapping windows and blend window outputs back into one array.

Used to run a sequence model over whole scenes: windows of the training length, overlapping so that every
output sample can be taken from a window in which it is far from the window's ends (where a focusing
model lacks half of the synthetic aperture).
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
