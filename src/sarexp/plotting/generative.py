"""Figures of the generative evaluation: real and generated images side by side."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def real_and_generated_grid(real: np.ndarray, generated: np.ndarray, count: int = 8) -> Figure:
    """Two rows of (N, C, H, W) images in [−1, 1], first channel shown in grey: real on top, generated below."""
    count = max(1, min(count, len(real), len(generated)))
    figure, axes = plt.subplots(2, count, figsize=(1.4 * count, 3.2), squeeze=False)
    for row, (title, images) in enumerate((("real", real), ("generated", generated))):
        for column in range(count):
            axis = axes[row, column]
            axis.imshow(images[column, 0], cmap="gray", vmin=-1.0, vmax=1.0)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row, 0].set_ylabel(title)
    figure.tight_layout()
    return figure
