"""Windows cover a scene and blending reproduces a per-sample function exactly."""

import numpy as np
import pytest

from sarexp.data.tiling import blend_weights, window_starts


@pytest.mark.parametrize("size, length, overlap", [(1000, 256, 64), (257, 256, 64), (100, 256, 32), (512, 128, 0)])
def test_windows_cover_the_axis_with_the_requested_overlap(size, length, overlap):
    starts = window_starts(size, length, overlap)
    window = min(length, size)
    covered = np.zeros(size, dtype=int)
    for start in starts:
        covered[start:start + window] += 1
    assert covered.min() >= 1 and starts[0] == 0 and starts[-1] + window == size
    assert all(b - a <= length - overlap for a, b in zip(starts, starts[1:]))


def test_blending_windows_of_a_pointwise_function_reproduces_it():
    size, length, overlap = 1000, 200, 60
    signal = np.random.default_rng(0).normal(size=size)
    total, weight_sum = np.zeros(size), np.zeros(size)
    for start in window_starts(size, length, overlap):
        weights = blend_weights(length, start, size, margin=overlap // 2, edge_weight=1e-3)
        total[start:start + length] += weights * signal[start:start + length]
        weight_sum[start:start + length] += weights
    np.testing.assert_allclose(total / weight_sum, signal, rtol=1e-12)


def test_blend_weights_favour_window_centres():
    weights = blend_weights(100, start=50, size=300, margin=10, edge_weight=1e-3)
    assert weights[:10].max() == pytest.approx(1e-3) and weights[90:].max() == pytest.approx(1e-3)
    assert weights[10:90].min() == 1.0
    first = blend_weights(100, start=0, size=300, margin=10, edge_weight=1e-3)
    assert first[:10].min() == 1.0


def test_bad_window_arguments_are_rejected():
    with pytest.raises(ValueError, match="overlap"):
        window_starts(100, 50, 50)
