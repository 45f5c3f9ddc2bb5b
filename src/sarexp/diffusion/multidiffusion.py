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

from sarexp.data.tiling import grid_windows, window_weights
from sarexp.diffusion.gaussian import ModelFn

Window = tuple[int, int, int, int]
# window_fn(x windows (B, C, h, w), t (B,), the windows' (top, left, h, w) on the canvas) → ε (B, C, h, w)
WindowFn = Callable[[torch.Tensor, torch.Tensor, list[Window]], torch.Tensor]


def multidiffusion_model_fn(window_fn: WindowFn, shape: tuple[int, int], window: int, overlap: int,
                            batch_size: int, on_step: Callable[[int], None] | None = None,
                            weights: str = "uniform") -> ModelFn:
    """``model_fn(x, t)`` over a (1, C, H, W) canvas of ``shape``: ``window_fn`` on every window of
    ``window`` pixels overlapping by ``overlap`` (:func:`sarexp.data.tiling.grid_windows`), in batches of
    ``batch_size``, averaged where windows overlap: with equal weights (``uniform``, the paper's), or with
    weights that ramp down over the ``overlap`` pixels at a window's inner edges (``linear``: the paper's
    weighted form, W_i feathered, so no window's edge shows). ``on_step(n)`` is told each time n windows are done."""
    windows = grid_windows(shape, window, overlap)
    masks = [torch.from_numpy(window_weights(w, shape, overlap, 1e-3, "linear")) if weights == "linear"
             else torch.ones(w[2], w[3]) for w in windows]
    coverage = torch.zeros(1, 1, *shape)
    for (top, left, height, width), mask in zip(windows, masks):
        coverage[..., top:top + height, left:left + width] += mask

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        total = torch.zeros_like(x)
        for start in range(0, len(windows), batch_size):
            batch = windows[start:start + batch_size]
            crops = torch.cat([x[..., top:top + h, left:left + w] for top, left, h, w in batch])
            predictions = window_fn(crops, t.expand(len(batch)), batch)
            for index, ((top, left, h, w), prediction) in enumerate(zip(batch, predictions), start=start):
                total[..., top:top + h, left:left + w] += prediction * masks[index].to(prediction)
            if on_step is not None:
                on_step(len(batch))
        return total / coverage.to(x)

    return model_fn
