"""Image-to-image scores of generated optical images against the ground truth, both (B, 3, H, W) in [−1, 1]:
PSNR and SSIM (torchmetrics, on [0, 1] images, data range 1), the spectral angle SAM (degrees, per pixel between
the RGB vectors), each averaged over images; and the mean image of each (region, season) — the baseline a
colorization must beat to show it used more than the prompt."""

from collections.abc import Sequence

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def _unit(images: torch.Tensor) -> torch.Tensor:
    return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def psnr(generated: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over images of 10·log10(1 / MSE) on [0, 1] images."""
    return float(peak_signal_noise_ratio(_unit(generated), _unit(target), data_range=1.0, dim=(1, 2, 3)))


def ssim(generated: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM (Gaussian window 11, σ 1.5) on [0, 1] images."""
    return float(structural_similarity_index_measure(_unit(generated), _unit(target), data_range=1.0))


def spectral_angle(generated: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-pixel angle (degrees) between the channel vectors of two (B, C, H, W) images on [0, 1]: (B, H, W)."""
    a, b = _unit(generated).double(), _unit(target).double()
    cosine = (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1)).clamp(min=eps)
    return torch.rad2deg(torch.arccos(cosine.clamp(-1.0, 1.0)))


def sam(generated: torch.Tensor, target: torch.Tensor) -> float:
    """Spectral angle mapper: the mean per-pixel angle in degrees."""
    return float(spectral_angle(generated, target).mean())


def image_scores(generated: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return {"psnr": psnr(generated, target), "ssim": ssim(generated, target), "sam": sam(generated, target)}


def group_means(images: torch.Tensor, groups: Sequence[str]) -> dict[str, torch.Tensor]:
    """The mean image of each group label (e.g. "arctic/winter")."""
    means = {}
    for group in sorted(set(groups)):
        members = torch.tensor([label == group for label in groups])
        means[group] = images[members].float().mean(dim=0)
    return means
