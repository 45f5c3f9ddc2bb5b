"""Empirical isotropic semivariogram of image sets, the geostatistical check of generated SAR/InSAR.

For a field z sampled on a pixel grid, γ(h) = 1/(2|N(h)|) Σ_{(x, y) ∈ N(h)} (z(x) − z(y))², where N(h) holds
all ordered pixel pairs whose separation rounds to h pixels. All pairs are used: for every displacement d
the sums Σ (z(x) − z(x + d))² = Σ z(x)² + Σ z(x + d)² − 2 Σ z(x) z(x + d) over overlapping pixels are
cross-correlations, computed for all d at once with zero-padded FFTs. A set of images is pooled: sums and
pair counts are added over images before dividing, per channel.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _correlate(a_hat: np.ndarray, b_hat: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Σ_x a(x) b(x + d) for every displacement d (FFT order), from the padded spectra of a and b."""
    return np.fft.irfft2(np.conj(a_hat) * b_hat, s=shape)


def semivariogram(images: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Lags 1..max_lag and γ per channel, shape (C, max_lag), of an (N, C, H, W) image set."""
    values = np.asarray(images, dtype=np.float64)
    height, width = values.shape[-2:]
    if not 1 <= max_lag < min(height, width):
        raise ValueError(f"max_lag must be in [1, {min(height, width) - 1}], got {max_lag}")
    shape = (2 * height, 2 * width)
    ones_hat = np.fft.rfft2(np.ones((height, width)), s=shape)
    z_hat = np.fft.rfft2(values, s=shape)
    squares_hat = np.fft.rfft2(values**2, s=shape)
    sums = (
        _correlate(squares_hat, ones_hat, shape)
        + _correlate(ones_hat, squares_hat, shape)
        - 2.0 * _correlate(z_hat, z_hat, shape)
    ).sum(axis=0)  # pooled over images: (C, 2H, 2W)
    pairs = values.shape[0] * _correlate(ones_hat, ones_hat, shape)
    dy = np.fft.fftfreq(shape[0], 1.0 / shape[0])[:, None]
    dx = np.fft.fftfreq(shape[1], 1.0 / shape[1])[None, :]
    lag_index = np.rint(np.hypot(dy, dx)).astype(int)
    valid = (np.abs(dy) < height) & (np.abs(dx) < width)
    lags = np.arange(1, max_lag + 1)
    gamma = np.empty((values.shape[1], max_lag))
    for column, lag in enumerate(lags):
        selected = valid & (lag_index == lag)
        gamma[:, column] = sums[:, selected].sum(axis=-1) / (2.0 * np.rint(pairs[selected]).sum())
    return lags, gamma


def plot_semivariograms(lags: np.ndarray, curves: dict[str, np.ndarray], channel_names: list[str]) -> Figure:
    """One panel per channel, one line per named set (e.g. real and generated)."""
    count = len(channel_names)
    figure, axes = plt.subplots(1, count, figsize=(4.5 * count, 3.6), squeeze=False)
    for channel, name in enumerate(channel_names):
        axis = axes[0, channel]
        for label, gamma in curves.items():
            axis.plot(lags, gamma[channel], marker="o", ms=3, label=label)
        axis.set(xlabel="lag h [pixels]", ylabel="γ(h)", title=f"semivariogram, {name}")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure
