"""Quicklooks of RGB → hyperspectral reconstructions.

One row per image: the RGB input | a false-colour render of the reconstructed cube (bands near 640, 550 and
460 nm as R, G, B) | the spectra of a few pixels (reconstruction solid, reference dashed when there is one) |
the per-pixel MRAE map (mean over bands of |ŷ − y| / y) when a reference exists.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

WAVELENGTHS = np.arange(400, 701, 10)
FALSE_COLOUR_NM = (640, 550, 460)


def false_colour(cube: np.ndarray) -> np.ndarray:
    """(H, W, 3) display image of a (bands, H, W) cube: three bands stretched to their 99th percentile."""
    bands = cube.shape[0]
    wavelengths = np.linspace(400, 700, bands) if bands != len(WAVELENGTHS) else WAVELENGTHS
    picks = [int(np.argmin(np.abs(wavelengths - nm))) for nm in FALSE_COLOUR_NM]
    image = np.stack([cube[index] for index in picks], axis=-1)
    return np.clip(image / max(float(np.percentile(image, 99)), 1e-8), 0.0, 1.0)


def probe_pixels(height: int, width: int, count: int) -> list[tuple[int, int]]:
    """``count`` pixels spread along the image diagonal (deterministic, away from the border)."""
    fractions = np.linspace(0.2, 0.8, count)
    return [(int(f * (height - 1)), int((1 - f) * (width - 1) if i % 2 else f * (width - 1)))
            for i, f in enumerate(fractions)]


def draw_row(axes: list[Axes], rgb: np.ndarray, pred: np.ndarray, reference: np.ndarray | None,
             name: str, pixels: int) -> None:
    """Fill the four panels of one image (arrays: rgb (3, H, W), pred / reference (bands, H, W))."""
    height, width = pred.shape[1:]
    axes[0].imshow(np.clip(rgb.transpose(1, 2, 0), 0, 1))
    axes[0].set_title(f"{name}: RGB input", fontsize="small")
    axes[1].imshow(false_colour(pred))
    axes[1].set_title("reconstruction (640/550/460 nm)", fontsize="small")
    wavelengths = np.linspace(400, 700, pred.shape[0])
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (row, col) in enumerate(probe_pixels(height, width, pixels)):
        colour = colours[index % len(colours)]
        axes[1].plot(col, row, "o", markersize=4, markeredgecolor="white", color=colour)
        axes[2].plot(wavelengths, pred[:, row, col], color=colour, label=f"({row}, {col})")
        if reference is not None:
            axes[2].plot(wavelengths, reference[:, row, col], "--", color=colour)
    axes[2].set_xlabel("nm", fontsize="small")
    axes[2].set_title("spectra (dashed: reference)" if reference is not None else "spectra", fontsize="small")
    if reference is not None:
        error = np.mean(np.abs(pred - reference) / np.maximum(reference, 1e-8), axis=0)
        shown = axes[3].imshow(error, cmap="magma", vmin=0, vmax=max(float(np.percentile(error, 99)), 1e-6))
        plt.colorbar(shown, ax=axes[3], fraction=0.046)
        axes[3].set_title(f"MRAE per pixel (mean {error.mean():.3f})", fontsize="small")
    else:
        axes[3].text(0.5, 0.5, "no reference cube", ha="center", va="center")
    for axis in (axes[0], axes[1], axes[3]):
        axis.set_xticks([])
        axis.set_yticks([])


def plot_reconstruction_rows(rgb: torch.Tensor, preds: torch.Tensor, reference: torch.Tensor | None,
                             names: list[str], pixels: int = 4) -> Figure:
    """The quicklook figure of a batch: one row per image."""
    count = preds.shape[0]
    figure, axes = plt.subplots(count, 4, figsize=(14, 3.2 * count), squeeze=False)
    as_numpy = (lambda t: t.detach().float().cpu().numpy())
    for row in range(count):
        draw_row(list(axes[row]), as_numpy(rgb[row]), as_numpy(preds[row]),
                 None if reference is None else as_numpy(reference[row]), names[row], pixels)
    figure.tight_layout()
    return figure


def plot_reconstructions(batch: dict, preds: torch.Tensor, num_images: int = 2, pixels: int = 4) -> Figure:
    """Validation sample figure (for :class:`sarexp.callbacks.samples.SaveSamplePlots`)."""
    count = min(num_images, preds.shape[0])
    reference = batch.get("hsi")
    return plot_reconstruction_rows(batch["rgb"][:count], preds[:count],
                                    None if reference is None else reference[:count],
                                    list(batch["name"][:count]), pixels)
