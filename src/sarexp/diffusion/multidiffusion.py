"""MultiDiffusion (Bar-Tal et al. 2023, "MultiDiffusion: Fusing Diffusion Paths for Controlled Image
Generation"): one canvas larger than the network's training size, denoised jointly.

At every sampler step each overlapping window of the canvas gets the network's prediction, and the canvas
takes, pixel by pixel, the average of the predictions of the windows covering it (the paper's closed-form
step with uniform weights). Averaging the ε predictions is the same as averaging the windows' next states:
every sampler here (DDPM, DDIM, DPM-Solver) makes its step an affine function of ε with coefficients that
are the same at every pixel, so the average commutes with the step. Neighbouring windows thus agree at every
step and the canvas has no seams, where independently denoised tiles disagree at their borders.

:func:`multidiffusion_model_fn` wraps a window-wise network call into a canvas-wise ``model_fn(x, t)`` that
any sampler of :mod:`sarexp.diffusion.samplers` accepts.
"""

from collections.abc import Callable

import torch

from sarexp.data.tiling import grid_windows
from sarexp.diffusion.gaussian import ModelFn

Window = tuple[int, int, int, int]
# window_fn(x windows (B, C, h, w), t (B,), the windows' (top, left, h, w) on the canvas) → ε (B, C, h, w)
WindowFn = Callable[[torch.Tensor, torch.Tensor, list[Window]], torch.Tensor]


def multidiffusion_model_fn(window_fn: WindowFn, shape: tuple[int, int], window: int, overlap: int,
                            batch_size: int, on_step: Callable[[int], None] | None = None) -> ModelFn:
    """``model_fn(x, t)`` over a (1, C, H, W) canvas of ``shape``: ``window_fn`` on every window of
    ``window`` pixels overlapping by ``overlap`` (:func:`sarexp.data.tiling.grid_windows`), in batches of
    ``batch_size``, averaged where windows overlap. ``on_step(n)`` is told each time n windows are done."""
    windows = grid_windows(shape, window, overlap)
    coverage = torch.zeros(1, 1, *shape)
    for top, left, height, width in windows:
        coverage[..., top:top + height, left:left + width] += 1.0

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        total = torch.zeros_like(x)
        for start in range(0, len(windows), batch_size):
            batch = windows[start:start + batch_size]
            crops = torch.cat([x[..., top:top + h, left:left + w] for top, left, h, w in batch])
            predictions = window_fn(crops, t.expand(len(batch)), batch)
            for (top, left, h, w), prediction in zip(batch, predictions):
                total[..., top:top + h, left:left + w] += prediction
            if on_step is not None:
                on_step(len(batch))
        return total / coverage.to(x)

    return model_fn
