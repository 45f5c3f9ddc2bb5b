"""Losses of spectral reconstruction: MRAE (MST++'s training loss), L1 and the spectral angle."""

import torch
from torch import nn

from sarexp.errors import ConfigError


def mrae(preds: torch.Tensor, target: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """mean(|ŷ − y| / (y + eps)); eps 0 is MST++'s ``Loss_MRAE`` (targets must be positive)."""
    return ((preds - target).abs() / (target + eps)).mean()


def spectral_angle(preds: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean angle (radians) between predicted and reference spectra along dim 1, safe at zero spectra."""
    cosine = (preds * target).sum(1) / (preds.norm(dim=1) * target.norm(dim=1) + eps)
    return torch.acos(cosine.clamp(-1 + 1e-7, 1 - 1e-7)).mean()


class SpectralLoss(nn.Module):
    """Weighted sum of MRAE, L1 and spectral angle; returns the total under "loss" and each term as
    ``<term>_loss`` (whole samples, no crop: distinct from the protocol metrics ``val/mrae`` …).

    In eval mode every term is returned whatever its weight, so runs with different weights stay comparable.
    """

    def __init__(self, mrae: float = 1.0, l1: float = 0.0, sam: float = 0.0, mrae_eps: float = 0.0) -> None:
        super().__init__()
        self.weights = {"mrae": mrae, "l1": l1, "sam": sam}
        if min(self.weights.values()) < 0 or not any(self.weights.values()):
            raise ConfigError(f"loss weights mrae, l1, sam must be ≥ 0 and not all 0, got {self.weights}")
        self.mrae_eps = mrae_eps

    def forward(self, preds: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = {}
        for name, weight in self.weights.items():
            if weight == 0 and self.training:
                continue
            if name == "mrae":
                terms[name] = mrae(preds, target, self.mrae_eps)
            elif name == "l1":
                terms[name] = (preds - target).abs().mean()
            else:
                terms[name] = spectral_angle(preds, target)
        total = sum(self.weights[name] * value for name, value in terms.items())
        return {"loss": total, **{f"{name}_loss": value for name, value in terms.items()}}
