"""The SSM4SAR loss: a weighted sum of MAE, SSIM, MSE, Huber and edge terms on I/Q signals.

Signals are (B, C, L) sequences or (B, C, H, W) images. SSIM and edges come from kornia, which works on
images: a sequence is treated as an image of width 1. Kornia's SSIM window is square, so a width smaller
than the window is repeated across the width first; with identical columns the Gaussian window reduces
exactly to its 1-D profile, so this is the 1-D SSIM along the sequence.
"""

import kornia
import torch
import torch.nn.functional as F
from torch import nn


class FocusingLoss(nn.Module):
    """Weighted sum of reconstruction terms.

    In eval mode every term is returned (and logged) whatever its weight, so runs with different weights
    stay comparable; in training mode only the weighted terms are computed, to keep steps fast.
    """

    def __init__(
        self,
        mae: float = 0.5,
        ssim: float = 0.5,
        mse: float = 0.0,
        huber: float = 0.0,
        edge: float = 0.0,
        huber_delta: float = 1.0,
        ssim_window: int = 11,
        ssim_data_range: float | None = None,
    ) -> None:
        super().__init__()
        if ssim_window < 3 or ssim_window % 2 == 0:
            raise ValueError(f"loss.ssim_window must be an odd integer >= 3, got {ssim_window}")
        self.weights = {"mae": mae, "ssim": ssim, "mse": mse, "huber": huber, "edge": edge}
        self.huber_delta = huber_delta
        self.ssim_window = ssim_window
        self.ssim_data_range = ssim_data_range

    def forward(self, preds: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        preds, target = _as_images(preds), _as_images(target)
        term_functions = {
            "mae": F.l1_loss,
            "mse": F.mse_loss,
            "huber": lambda p, t: F.huber_loss(p, t, delta=self.huber_delta),
            "ssim": self._ssim_loss,
            "edge": self._edge_loss,
        }
        terms = {
            name: function(preds, target)
            for name, function in term_functions.items()
            if self.weights[name] != 0.0 or not self.training
        }
        terms["loss"] = sum(self.weights[name] * value for name, value in terms.items())
        return terms

    def _ssim_loss(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """1 − mean SSIM; the data range defaults to the target batch's (max − min)."""
        data_range = self.ssim_data_range
        if data_range is None:
            data_range = float((target.max() - target.min()).detach().clamp_min(1e-6))
        return 1.0 - ssim_map(preds, target, self.ssim_window, data_range).mean()

    def _edge_loss(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """L1 distance of Sobel gradients: penalises blurred or displaced responses more than MAE does."""
        return F.l1_loss(kornia.filters.spatial_gradient(preds), kornia.filters.spatial_gradient(target))


def ssim_map(preds: torch.Tensor, target: torch.Tensor, window: int, data_range: float) -> torch.Tensor:
    """Kornia's SSIM map of two (B, C, H, W) images; width-1 images give the 1-D SSIM along H.

    Kornia pads by window//2 (reflecting), which needs a width above that: window//2 + 1 identical columns
    is the narrowest image that gives the same map as a width-`window` one.
    """
    width = max(window // 2 + 1, target.shape[-1])
    similarity = kornia.metrics.ssim(_widen(preds, width), _widen(target, width), window, max_val=data_range)
    return similarity[..., :1] if target.shape[-1] == 1 else similarity


def _as_images(x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 3:
        return x.unsqueeze(-1)
    if x.ndim == 4:
        return x
    raise ValueError(f"expected (B, C, L) or (B, C, H, W) tensors, got shape {tuple(x.shape)}")


def _widen(x: torch.Tensor, width: int) -> torch.Tensor:
    """Repeat a narrow image across its width (a width-1 sequence becomes `width` identical columns)."""
    if x.shape[-1] >= width:
        return x
    if x.shape[-1] != 1:
        raise ValueError(f"SSIM needs images of width 1 or at least {width}, got width {x.shape[-1]}")
    return x.expand(*x.shape[:-1], width)
