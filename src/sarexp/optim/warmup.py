"""Learning-rate warm-up counted in optimizer steps (the seed's `warmup_steps`), then constant or cosine."""

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from sarexp.errors import ConfigError


def warmup_steps_schedule(optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, decay: str = "constant",
                          min_lr_ratio: float = 0.0) -> LambdaLR:
    """Linear warm-up from lr/warmup_steps to lr over `warmup_steps` steps; then `constant`, or `cosine`
    decay to min_lr_ratio·lr at `total_steps` (the optimizer's own step count, given by the system)."""
    if warmup_steps < 0:
        raise ConfigError(f"warmup_steps must be ≥ 0, got {warmup_steps}")
    if decay not in ("constant", "cosine"):
        raise ConfigError(f"scheduler decay must be constant or cosine, got {decay!r}")
    total = max(int(total_steps), 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "constant":
            return 1.0
        progress = min((step - warmup_steps) / max(total - warmup_steps, 1), 1.0)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
