"""MixMIM reconstruction loss: unmix the two decoder branches, then a (weighted) per-pixel MSE.

With `norm_pix_loss` each target patch is standardised by its own mean and (unbiased) variance, as in
MAE / MixMIM. The loss covers every token of every image: hidden tokens come from the branch that kept
the image's visible tokens, visible ones from the branch that held the partner's (flipped back).
"""

from typing import Literal

import torch
from torch import nn


class MixedReconstructionLoss(nn.Module):
    """loss(pred (2B, L, P, C), target (B, L, P, C), mask (h, w) bool, weights (B, L, P, C) or None).

    `weight_reduction`: ``pixel`` uses each pixel's weight; ``token`` averages the weights of a token's
    pixels per channel first (the seed's "aggregate per-pixel weights to token weights").
    """

    def __init__(
        self, norm_pix_loss: bool = True, weight_reduction: Literal["pixel", "token"] = "pixel", eps: float = 1e-6
    ) -> None:
        super().__init__()
        self.norm_pix_loss = norm_pix_loss
        self.weight_reduction = weight_reduction
        self.eps = eps

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return weighted_mse(unmix(pred, mask), self.targets(target), self._reduce(weights))

    def targets(self, patches: torch.Tensor) -> torch.Tensor:
        """What the decoder is asked to predict: the patches, standardised per patch with `norm_pix_loss`."""
        if not self.norm_pix_loss:
            return patches
        mean, scale = self._patch_statistics(patches)
        return (patches - mean) / scale

    def reconstruct(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unmixed prediction in the units of `target`: per-patch standardisation undone with the target's
        statistics (as MAE's visualisations do), so it can be shown beside the input."""
        unmixed = unmix(pred, mask)
        if not self.norm_pix_loss:
            return unmixed
        mean, scale = self._patch_statistics(target)
        return unmixed * scale + mean

    def _patch_statistics(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = patches.mean(dim=(2, 3), keepdim=True)
        var = patches.flatten(2).var(dim=-1).view(*patches.shape[:2], 1, 1)
        return mean, (var + self.eps).sqrt()

    def _reduce(self, weights: torch.Tensor | None) -> torch.Tensor | None:
        if weights is None or self.weight_reduction == "pixel":
            return weights
        return weights.mean(dim=2, keepdim=True)


def unmix(pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(2B, L, …) decoder branches → (B, L, …) reconstructions of the B original images."""
    batch = pred.shape[0] // 2
    hidden = mask.reshape(1, -1, *([1] * (pred.ndim - 2)))
    return torch.where(hidden, pred[:batch], pred[batch:].flip(0))


def weighted_mse(reconstruction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    error = (reconstruction.float() - target.float()) ** 2
    return (error if weights is None else error * weights).mean()
