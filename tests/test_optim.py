"""Optimizer groups from `_optim` hints and the warmup-cosine schedule."""

import math
from functools import partial

import pytest
import torch
from torch import nn

from sarexp.optim.param_groups import build_optimizer
from sarexp.optim.schedulers import warmup_cosine


class Hinted(nn.Module):
    def __init__(self, hint_lr: float) -> None:
        super().__init__()
        self.ssm = nn.Parameter(torch.zeros(3))
        self.ssm._optim = {"lr": hint_lr, "weight_decay": 0.0}
        self.dense = nn.Linear(3, 3)


@pytest.mark.parametrize("base_lr, hint_lr, expected", [(0.005, 0.001, 0.001), (0.0005, 0.001, 0.0005)])
def test_hinted_parameters_get_their_own_group_with_capped_lr(base_lr, hint_lr, expected):
    module = Hinted(hint_lr)
    optimizer = build_optimizer(partial(torch.optim.AdamW, lr=base_lr, weight_decay=0.01), module)
    plain, special = optimizer.param_groups
    assert {id(p) for p in special["params"]} == {id(module.ssm)}
    assert special["lr"] == pytest.approx(expected) and special["weight_decay"] == 0.0
    assert {id(p) for p in plain["params"]} == {id(p) for p in module.dense.parameters()}
    assert plain["lr"] == base_lr and plain["weight_decay"] == 0.01


def test_warmup_cosine_shape():
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = warmup_cosine(optimizer, total_steps=100, warmup_fraction=0.1, min_lr_ratio=0.0)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert rates[10] == pytest.approx(1.0)
    assert rates[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
