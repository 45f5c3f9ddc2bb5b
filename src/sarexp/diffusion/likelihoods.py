"""Closed-form KL between Gaussians and the discretized Gaussian likelihood of 8-bit data (the VLB's terms)."""

import math

import torch


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)) elementwise, in nats."""
    return 0.5 * (
        -1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Φ(x) by the tanh approximation of Page (1977), accurate to ~1e-4 and smooth in x."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor, bins: int = 256
) -> torch.Tensor:
    """log P(x) for data x on a grid of `bins` levels in [−1, 1] under N(means, e^{2 log_scales}).

    Each level owns a bin of width 2/(bins−1); the outermost bins extend to ±∞ so the levels' masses sum to 1.
    """
    half_width = 1.0 / (bins - 1)
    inv_std = torch.exp(-log_scales)
    centered = x - means
    cdf_plus = approx_standard_normal_cdf(inv_std * (centered + half_width))
    cdf_minus = approx_standard_normal_cdf(inv_std * (centered - half_width))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_minus = torch.log((1.0 - cdf_minus).clamp(min=1e-12))
    log_bin = torch.log((cdf_plus - cdf_minus).clamp(min=1e-12))
    edge = 1.0 - half_width / 2  # x sits on the lowest or highest level
    return torch.where(x < -edge, log_cdf_plus, torch.where(x > edge, log_one_minus_cdf_minus, log_bin))
