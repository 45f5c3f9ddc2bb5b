"""Learning-rate schedules over optimizer steps, built from torch's own schedulers."""

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from sarexp.errors import ConfigError


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.05,
    min_lr_ratio: float = 0.01,
    horizon: float = 1.0,
    warmup_steps: int | None = None,
) -> LambdaLR:
    """Linear warmup over `warmup_fraction` of the run, then cosine decay to `min_lr_ratio` × each group's lr.

    `total_steps` comes from the trainer (estimated stepping batches), so the schedule follows
    `trainer.max_steps` / `max_epochs` without being set twice. `horizon` > 1 lays the schedule over
    horizon × total_steps and training stops partway along it (SAR-W-MixMAE planned 1024 epochs and
    stopped at 64: `horizon: 16` with `trainer.max_epochs: 64`). `warmup_steps`, when set, is the warmup
    length in optimizer steps instead of the fraction (the colorization seed's 1000 and 2000 warm-up steps).
    """
    if not 0.0 <= warmup_fraction < 1.0:
        raise ConfigError(f"scheduler.warmup_fraction must be in [0, 1), got {warmup_fraction}")
    if horizon < 1.0:
        raise ConfigError(f"scheduler.horizon must be ≥ 1, got {horizon}")
    if warmup_steps is not None and warmup_steps < 0:
        raise ConfigError(f"scheduler.warmup_steps must be >= 0, got {warmup_steps}")
    total = max(int(round(total_steps * horizon)), 1)
    warmup = int(round(warmup_fraction * total)) if warmup_steps is None else int(warmup_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def warmup_constant(optimizer: Optimizer, total_steps: int, warmup_steps: int = 2000) -> LambdaLR:
    """Linear warmup over a fixed number of optimizer steps, then the constant lr (Stable Diffusion
    fine-tuning's ``constant_with_warmup``; the colorization seed's `warmup_steps`). `total_steps` is unused
    but taken so every schedule is built the same way."""
    if warmup_steps < 0:
        raise ConfigError(f"scheduler.warmup_steps must be >= 0, got {warmup_steps}")
    return LambdaLR(optimizer, lambda step: min((step + 1) / warmup_steps, 1.0) if warmup_steps else 1.0)
