"""Figures for SAR azimuth focusing: amplitude in dB of input, prediction and reference."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def to_db(amplitude: np.ndarray, floor_db: float = -60.0) -> np.ndarray:
    """20·log10 of a non-negative amplitude, clipped below at `floor_db`."""
    return np.maximum(20.0 * np.log10(np.asarray(amplitude, dtype=np.float64) + 1e-12), floor_db)


def iq_amplitude_db(iq: torch.Tensor, floor_db: float = -60.0) -> np.ndarray:
    """Amplitude in dB of a (2, ...) I/Q tensor."""
    values = iq.detach().cpu().double().numpy()
    return to_db(np.hypot(values[0], values[1]), floor_db)


def plot_patches(batch: dict[str, torch.Tensor], preds: torch.Tensor, num_patches: int = 3) -> Figure:
    """One row per patch: amplitude (dB) along azimuth of the input, the prediction and the reference."""
    count = min(num_patches, preds.shape[0])
    figure, axes = plt.subplots(count, 1, figsize=(10, 2.6 * count), squeeze=False)
    for row in range(count):
        axis = axes[row, 0]
        axis.plot(iq_amplitude_db(batch["input"][row, :2]), lw=0.8, color="0.6", label="input (range-compressed)")
        axis.plot(iq_amplitude_db(batch["target"][row]), lw=0.8, color="k", label="reference (focused)")
        axis.plot(iq_amplitude_db(preds[row]), lw=0.8, color="tab:red", alpha=0.8, label="prediction")
        axis.set_ylabel("amplitude [dB]")
    axes[-1, 0].set_xlabel("azimuth sample in patch")
    axes[0, 0].legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    return figure


def plot_scene_quicklook(
    rc: np.ndarray, prediction: np.ndarray, reference: np.ndarray | None, dynamic_range_db: float = 50.0
) -> Figure:
    """Scene amplitudes (non-negative arrays) in dB side by side: input | prediction | reference.

    All panels share one colour scale anchored at the brightest predicted or reference pixel, so the
    brightness of the panels can be compared directly.
    """
    panels = [("input (range-compressed)", rc), ("prediction", prediction)]
    if reference is not None:
        panels.append(("reference (matched filter)", reference))
    images = [(title, to_db(amplitude, floor_db=-300.0)) for title, amplitude in panels]
    top = max(float(image.max()) for _, image in images[1:])
    figure, axes = plt.subplots(1, len(images), figsize=(4.2 * len(images), 6), squeeze=False)
    for axis, (title, image) in zip(axes[0], images):
        shown = axis.imshow(image, cmap="gray", vmin=top - dynamic_range_db, vmax=top, aspect="auto",
                            interpolation="nearest")
        axis.set_title(title)
        axis.set_xlabel("range bin")
    axes[0, 0].set_ylabel("azimuth line")
    figure.colorbar(shown, ax=axes[0, -1], label="amplitude [dB]")
    figure.tight_layout()
    return figure
