"""Which timesteps of a T-step process a shorter sampler keeps."""

import numpy as np

from sarexp.errors import ConfigError

SPACINGS = ("uniform", "quadratic", "logsnr", "trailing")


def spaced_timesteps(alphas_cumprod: np.ndarray, steps: int, spacing: str = "uniform") -> list[int]:
    """`steps` distinct indices in [0, T), always 0 and T−1 (for steps ≥ 2), ascending.

    uniform: evenly spaced in t (the seed's respacing and DDIM's default); quadratic: denser near t = 0 (DDIM
    paper, CIFAR); logsnr: evenly spaced in λ = log(α/σ), the spacing DPM-Solver recommends; trailing: T−1, T−1−T/steps,
    … rounded (diffusers' ``trailing``, Lin et al. 2024: starts at the last step, ends near T/steps − 1 instead of 0). Indices that round
    to the same step are moved to the nearest free one, so exactly `steps` network evaluations are made.
    """
    total = len(alphas_cumprod)
    if not 1 <= steps <= total:
        raise ConfigError(f"sampler.steps must be in [1, {total}] (the process has {total} steps), got {steps}")
    if spacing not in SPACINGS:
        raise ConfigError(f"sampler.spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")
    if steps == 1:
        return [total - 1]
    if spacing == "trailing":
        return _distinct(np.round(np.arange(total, 0, -total / steps)).astype(int)[::-1] - 1, total)
    if spacing == "uniform":
        positions = np.linspace(0.0, total - 1, steps)
    elif spacing == "quadratic":
        positions = np.linspace(0.0, np.sqrt(total - 1), steps) ** 2
    else:
        log_snr = 0.5 * np.log(alphas_cumprod / (1.0 - alphas_cumprod))  # decreasing in t
        targets = np.linspace(log_snr[0], log_snr[-1], steps)
        positions = np.interp(-targets, -log_snr, np.arange(total, dtype=np.float64))
    return _distinct(np.rint(positions).astype(int), total)


def _distinct(indices: np.ndarray, total: int) -> list[int]:
    """Sorted distinct indices in [0, total): a repeated index is pushed up to the next free one, then the top
    ones are pulled back under `total` (both keep the order strict)."""
    chosen: list[int] = []
    for index in sorted(int(i) for i in indices):
        index = max(index, chosen[-1] + 1) if chosen else index
        chosen.append(index)
    last = len(chosen) - 1
    return [min(index, total - 1 - (last - position)) for position, index in enumerate(chosen)]
