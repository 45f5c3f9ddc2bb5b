"""Windows cover a scene and blending reproduces a per-sample function exactly."""

import numpy as np
import pytest

from sarexp.data.tiling import (
    Canvas,
    blend_weights,
    block_windows,
    grid_windows,
    ramp_weights,
    window_starts,
    window_weights,
)


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


@pytest.mark.parametrize("shape, length, overlap", [((70, 90), 24, 4), ((10, 10), 32, 8), ((100, 33), 33, 0)])
def test_blocks_cover_the_image_sharing_exactly_the_overlap(shape, length, overlap):
    blocks = block_windows(shape, length, overlap)
    covered = np.zeros(shape, dtype=int)
    for top, left, height, width in blocks:
        covered[top:top + height, left:left + width] += 1
    assert covered.min() >= 1 and covered.max() <= 4
    rows = sorted({top for top, _, _, _ in blocks})
    assert all(b - a == length - overlap for a, b in zip(rows, rows[1:]))


@pytest.mark.parametrize("profile", ["step", "linear"])
def test_blending_2d_windows_of_a_pointwise_function_reproduces_it(profile):
    image = np.random.default_rng(1).normal(size=(3, 50, 70)).astype(np.float32)
    canvas = Canvas(3, (50, 70))
    for window in grid_windows((50, 70), 16, 6):
        top, left, height, width = window
        weights = window_weights(window, (50, 70), 6 if profile == "linear" else 3, 1e-3, profile)
        canvas.add(image[:, top:top + height, left:left + width], weights, top, left)
    np.testing.assert_allclose(canvas.result(), image, rtol=1e-5, atol=1e-6)


def test_ramps_cross_fade_and_missing_values_stay_missing():
    ramp = ramp_weights(20, start=10, size=100, margin=5, edge_weight=1e-3)
    assert ramp[0] == pytest.approx(0.1) and ramp[4] == pytest.approx(0.9) and ramp[5:15].min() == 1.0
    np.testing.assert_allclose(ramp[:5] + ramp[-5:][::-1], 2 * ramp[:5])  # symmetric ends
    canvas = Canvas(1, (4, 4))
    values = np.ones((1, 4, 4), np.float32)
    values[0, 0, 0] = np.nan
    canvas.add(values, np.ones((4, 4), np.float32), 0, 0)
    result = canvas.result()
    assert np.isnan(result[0, 0, 0]) and np.isfinite(result[0, 1:, :]).all()
