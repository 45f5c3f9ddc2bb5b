"""Figures for masked-image pretraining: inputs beside their reconstructions, per channel."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def plot_reconstructions(
    batch: dict[str, torch.Tensor], preds: torch.Tensor, num_images: int = 3, channels: tuple[str, ...] = ("VH", "VV")
) -> Figure:
    """One row per image: for each channel the (normalised) input and its reconstruction on one colour scale."""
    count = min(num_images, preds.shape[0])
    images = batch["image"][:count].detach().float().cpu()
    recon = preds[:count].detach().float().cpu()
    columns = 2 * len(channels)
    figure, axes = plt.subplots(count, columns, figsize=(2.4 * columns, 2.4 * count), squeeze=False)
    for row in range(count):
        for index, name in enumerate(channels):
            low, high = images[row, index].quantile(0.01).item(), images[row, index].quantile(0.99).item()
            for offset, (title, data) in enumerate(((f"{name} input", images), (f"{name} reconstruction", recon))):
                axis = axes[row, 2 * index + offset]
                axis.imshow(data[row, index], cmap="gray", vmin=low, vmax=high, interpolation="nearest")
                axis.set_xticks([])
                axis.set_yticks([])
                if row == 0:
                    axis.set_title(title, fontsize="small")
    figure.tight_layout()
    return figure
