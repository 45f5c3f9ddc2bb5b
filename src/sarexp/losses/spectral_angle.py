"""Spectral angle loss: the mean angle between predicted and reference spectra (channel vectors) per pixel.

Differentiable and safe where torchmetrics' SAM metric is not: a small ε in the norms and a cosine clamped
inside (−1, 1), where arccos has a finite gradient; zero spectra give angle π/2 instead of NaN.
"""

import torch

COSINE_LIMIT = 1.0 - 1e-7


def spectral_angle(preds: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over batch and pixels of arccos(⟨p, t⟩ / (‖p‖‖t‖)) along dim 1, in radians."""
    dot = (preds * target).sum(dim=1)
    norms = preds.norm(dim=1) * target.norm(dim=1)
    cosine = (dot / (norms + eps)).clamp(-COSINE_LIMIT, COSINE_LIMIT)
    return torch.arccos(cosine).mean()
