"""PSNR of the focused SAR amplitude, over a whole evaluation set.

amplitude = sqrt(I² + Q²) of a (B, 2+, L) tensor; PSNR = 10·log10(peak² / MSE) with `peak` the largest
reference amplitude seen and MSE over all samples seen, so the value does not depend on how the set was
split into batches. With ``source="input"`` the metric scores the unfocused input's I/Q channels against
the same reference, which shows how much the model gains over doing nothing.
"""

from typing import Literal

import torch
from torchmetrics import Metric

from sarexp.errors import ConfigError


class AmplitudePSNR(Metric):
    """Dataset-level amplitude PSNR in dB (higher is better)."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, source: Literal["prediction", "input"] = "prediction", channels: tuple[int, int] = (0, 1)):
        super().__init__()
        if source not in ("prediction", "input"):
            raise ConfigError(f"AmplitudePSNR source must be 'prediction' or 'input', got {source!r}")
        self.source = source
        self.channels = tuple(channels)
        self.add_state("squared_error", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("peak", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="max")

    def update(self, preds: torch.Tensor, target: torch.Tensor, inputs: torch.Tensor) -> None:
        estimate = preds if self.source == "prediction" else inputs
        estimated = _amplitude(estimate[:, list(self.channels)])
        reference = _amplitude(target[:, :2])
        self.squared_error += ((estimated - reference) ** 2).sum(dtype=torch.float64)
        self.count += reference.numel()
        self.peak = torch.maximum(self.peak, reference.max().to(torch.float64))

    def compute(self) -> torch.Tensor:
        mse = self.squared_error / self.count.clamp_min(1)
        return (10.0 * torch.log10(self.peak**2 / mse)).float()


def _amplitude(iq: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(iq[:, 0].double() ** 2 + iq[:, 1].double() ** 2)
