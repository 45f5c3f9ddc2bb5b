"""Per-network DDP wrapping (sarexp.strategies.parts) without processes: which parameters a system's parts must
cover, what a GAN refuses, and that a system outside DDP calls its plain networks."""

from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import nn

from sarexp.errors import ConfigError, TrainingError
from sarexp.strategies.ddp import HydraDDPStrategy
from sarexp.strategies.parts import DistributedParts, _check_cover
from test_gan_system import make_system


class _TwoNets(DistributedParts, nn.Module):
    ddp_parts = ("first", "second")

    def __init__(self, extra: bool = False, shared: bool = False) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(2, 2), nn.Linear(2, 2)
        if shared:
            self.second.weight = self.first.weight
        if extra:
            self.head = nn.Linear(2, 1)
        self.frozen = nn.Linear(2, 2).requires_grad_(False)  # an EMA copy: not trained, needs no wrapper


def test_parts_must_cover_every_trainable_parameter_once():
    _check_cover(_TwoNets())
    with pytest.raises(TrainingError, match=r"outside _TwoNets.ddp_parts .* head.weight"):
        _check_cover(_TwoNets(extra=True))
    with pytest.raises(TrainingError, match="shared by first and second"):
        _check_cover(_TwoNets(shared=True))


def test_without_wrappers_a_system_calls_its_plain_networks():
    module = _TwoNets()
    assert module.distributed("first") is module.first
    with module.skip_sync("first", True):  # nothing to skip outside DDP
        module.first(torch.ones(1, 2))


def test_the_gan_refuses_a_ddp_strategy_that_wraps_it_whole():
    system = make_system()
    for strategy, refused in ((DDPStrategy(), True), (HydraDDPStrategy(), True),
                              (DDPStrategy(find_unused_parameters=True), False)):
        system._trainer = SimpleNamespace(strategy=strategy)  # HydraDDPStrategy leaves no wrappers: not set up
        if refused:
            with pytest.raises(ConfigError, match="trainer=ddp"):
                system.on_fit_start()
        else:
            system.on_fit_start()


def test_adversarial_batch_is_global_or_local():
    with pytest.raises(ConfigError, match="system.adversarial_batch"):
        make_system(adversarial_batch="everywhere")
