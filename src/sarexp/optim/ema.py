"""Exponential moving average of a network's weights, kept as a frozen copy of the network.

The copy is a submodule of the system, so its weights are saved in the checkpoint beside the raw ones
(`ema_net.*` next to `net.*`). Attributes such as the `_optim` hints are not copied by `deepcopy` of
parameters; optimizer groups must therefore be built from the raw network, never from the copy.
"""

import copy

import torch
from torch import nn


def frozen_copy(net: nn.Module) -> nn.Module:
    ema = copy.deepcopy(net)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema ← decay · ema + (1 − decay) · net for parameters; buffers are copied."""
    for ema_param, param in zip(ema.parameters(), net.parameters(), strict=True):
        ema_param.lerp_(param.detach(), 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), net.buffers(), strict=True):
        ema_buffer.copy_(buffer)


def warmed_decay(decay: float, updates: int) -> float:
    """min(decay, (1 + n)/(10 + n)) after n updates: early averages forget the random initial weights, so
    short runs get a useful EMA; long runs reach `decay` (0.9999 after ~10⁵ updates)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))
