"""Noise schedules β_1..β_T (Ho et al. 2020 linear; Nichol & Dhariwal 2021 cosine; Stable Diffusion's
scaled_linear)."""

import math

import numpy as np

from sarexp.errors import ConfigError

MAX_BETA = 0.999  # the cosine schedule's clip: keeps the last steps from destroying the signal in one jump


def linear_betas(steps: int) -> np.ndarray:
    """Ho et al.'s linear schedule (1e-4 → 0.02 for T = 1000), rescaled by 1000/T so any T spans the same
    noise levels; below T = 50 the last β's would reach 1 and are clipped at MAX_BETA like the cosine ones."""
    scale = 1000.0 / steps
    return np.minimum(np.linspace(scale * 1e-4, scale * 0.02, steps, dtype=np.float64), MAX_BETA)


def cosine_alpha_bar(t: np.ndarray, offset: float = 0.008) -> np.ndarray:
    """ᾱ(t) = cos²((t + s)/(1 + s) · π/2) for t ∈ [0, 1] (unnormalised; ᾱ(t)/ᾱ(0) is the schedule)."""
    return np.cos((t + offset) / (1.0 + offset) * math.pi / 2.0) ** 2


def cosine_betas(steps: int) -> np.ndarray:
    """β_t = 1 − ᾱ(t/T)/ᾱ((t−1)/T), clipped at MAX_BETA."""
    grid = np.arange(steps + 1, dtype=np.float64) / steps
    alpha_bar = cosine_alpha_bar(grid)
    return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], MAX_BETA)


def scaled_linear_betas(steps: int, start: float = 0.00085, end: float = 0.012) -> np.ndarray:
    """Stable Diffusion's schedule (diffusers' ``scaled_linear``): β linear in √β from `start` to `end`. The
    endpoints are not rescaled with T (latent diffusion uses T = 1000), so weights trained with it keep their
    noise levels."""
    return np.linspace(math.sqrt(start), math.sqrt(end), steps, dtype=np.float64) ** 2


def make_betas(noise_schedule: str, steps: int) -> np.ndarray:
    if steps < 1:
        raise ConfigError(f"diffusion.steps must be >= 1, got {steps}")
    if noise_schedule == "linear":
        return linear_betas(steps)
    if noise_schedule == "cosine":
        return cosine_betas(steps)
    if noise_schedule == "scaled_linear":
        return scaled_linear_betas(steps)
    raise ConfigError(f"unknown noise_schedule {noise_schedule!r}; use linear, cosine or scaled_linear")
