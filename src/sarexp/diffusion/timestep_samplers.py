"""Which timesteps a training batch sees: uniform, or importance-sampled by the loss (Nichol & Dhariwal 2021).

Samplers are modules with buffers so their state (the loss history) is saved in the checkpoint.
"""

from abc import ABC, abstractmethod

import torch
from torch import nn

from sarexp.errors import ConfigError


class TimestepSampler(nn.Module, ABC):
    """Draws t ~ p(t) and the importance weights 1/(T p(t)) that keep the loss an unbiased estimate."""

    def __init__(self, num_timesteps: int) -> None:
        super().__init__()
        self.num_timesteps = num_timesteps

    @abstractmethod
    def probabilities(self) -> torch.Tensor:
        """p(t) over the T steps."""

    def sample(self, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.probabilities().to(device)
        t = torch.multinomial(p, batch_size, replacement=True)
        weights = 1.0 / (self.num_timesteps * p[t])
        return t, weights

    def update(self, timesteps: torch.Tensor, losses: torch.Tensor) -> None:
        """Record per-example losses at their timesteps (no-op unless the sampler learns from them)."""


class UniformSampler(TimestepSampler):
    def probabilities(self) -> torch.Tensor:
        return torch.full((self.num_timesteps,), 1.0 / self.num_timesteps)


class LossSecondMomentSampler(TimestepSampler):
    """p(t) ∝ sqrt(E[L_t²]) over the last `history` losses at each t, mixed with `uniform_prob` of uniform;
    uniform until every t has a full history (the seed's ``schedule_sampler=loss-second-moment``)."""

    def __init__(self, num_timesteps: int, history: int = 10, uniform_prob: float = 0.001) -> None:
        super().__init__(num_timesteps)
        if history < 1 or not 0.0 <= uniform_prob <= 1.0:
            raise ConfigError("loss-aware sampler needs history >= 1 and uniform_prob in [0, 1]")
        self.uniform_prob = uniform_prob
        self.register_buffer("loss_history", torch.zeros(num_timesteps, history, dtype=torch.float64))
        self.register_buffer("loss_counts", torch.zeros(num_timesteps, dtype=torch.long))

    def warmed_up(self) -> bool:
        return bool((self.loss_counts == self.loss_history.shape[1]).all())

    def probabilities(self) -> torch.Tensor:
        uniform = torch.full((self.num_timesteps,), 1.0 / self.num_timesteps, dtype=torch.float64)
        if not self.warmed_up():
            return uniform.float()
        weights = torch.sqrt((self.loss_history**2).mean(dim=1))
        weights = weights / weights.sum()
        return ((1.0 - self.uniform_prob) * weights + self.uniform_prob * uniform).float()

    @torch.no_grad()
    def update(self, timesteps: torch.Tensor, losses: torch.Tensor) -> None:
        history = self.loss_history.shape[1]
        for t, loss in zip(timesteps.tolist(), losses.detach().double().cpu().tolist(), strict=True):
            count = int(self.loss_counts[t])
            if count == history:  # drop the oldest loss
                self.loss_history[t, :-1] = self.loss_history[t, 1:].clone()
                self.loss_history[t, -1] = loss
            else:
                self.loss_history[t, count] = loss
                self.loss_counts[t] += 1


TIMESTEP_SAMPLERS = {"uniform": UniformSampler, "loss-second-moment": LossSecondMomentSampler}


def create_timestep_sampler(name: str, num_timesteps: int) -> TimestepSampler:
    """The seed's `schedule_sampler` names: ``uniform`` or ``loss-second-moment``."""
    if name not in TIMESTEP_SAMPLERS:
        raise ConfigError(f"schedule_sampler must be one of {', '.join(TIMESTEP_SAMPLERS)}, got {name!r}")
    return TIMESTEP_SAMPLERS[name](num_timesteps)
