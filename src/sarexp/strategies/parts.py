"""DDP for systems whose networks step separately (a GAN's generator and discriminator).

One DDP wrapper around the whole LightningModule expects every trainable parameter to receive a gradient in
every backward. A GAN's discriminator backward reaches only the discriminator and its generator backward only
the generator, so that wrapper fails ("parameters that were not used in producing the loss") unless
`find_unused_parameters=True` makes DDP walk the autograd graph after every forward and all-reduce the idle
network's zero gradients as well. Instead a system lists its networks in `ddp_parts`; the strategy wraps each
in its own DDP, in which every backward uses every parameter. The system calls a network through
`distributed(name)` where that network's gradients must be synchronised, and through the plain attribute where
they must not (the discriminator inside the generator's loss, its parameters frozen there). The wrappers live
outside the module tree, so checkpoint keys do not change.
"""

from contextlib import AbstractContextManager, nullcontext
from typing import Callable

from lightning.pytorch.overrides.distributed import _sync_module_states
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sarexp.errors import TrainingError


class DistributedParts:
    """Mixin for LightningModules: `ddp_parts` names the networks the DDP strategy wraps one by one."""

    ddp_parts: tuple[str, ...] = ()

    def distributed(self, name: str) -> nn.Module:
        """Network `name` in its own DDP wrapper while the strategy holds one (fitting), else the network."""
        wrapper = getattr(self, "_ddp_wrappers", {}).get(name)
        return wrapper if wrapper is not None else getattr(self, name)

    def skip_sync(self, name: str, skip: bool) -> AbstractContextManager:
        """`no_sync` of network `name` when `skip`: a forward inside it leaves its gradients local (a micro-batch
        whose gradients are accumulated before the optimizer steps); the next synchronised backward all-reduces
        the sum."""
        wrapper = getattr(self, "_ddp_wrappers", {}).get(name)
        return wrapper.no_sync() if skip and wrapper is not None else nullcontext()


def has_parts(module: nn.Module) -> bool:
    return isinstance(module, DistributedParts) and bool(module.ddp_parts)


def wrap_parts(module: nn.Module, wrap: Callable[[nn.Module], DistributedDataParallel]) -> None:
    """Wrap each of `module.ddp_parts` with `wrap`, after every parameter and buffer of the whole module (EMA
    copies included) has been made rank 0's."""
    _check_cover(module)
    _sync_module_states(module)
    module._ddp_wrappers = {name: wrap(getattr(module, name)) for name in module.ddp_parts}


def part_wrappers(module: nn.Module | None) -> dict[str, DistributedDataParallel]:
    return dict(getattr(module, "_ddp_wrappers", {})) if module is not None else {}


def unwrap_parts(module: nn.Module | None) -> None:
    if module is not None and has_parts(module):
        module._ddp_wrappers = {}


def _check_cover(module: nn.Module) -> None:
    """Every trainable parameter in exactly one part: one outside all parts would never be synchronised."""
    owner: dict[int, str] = {}
    for name in module.ddp_parts:
        for parameter in getattr(module, name).parameters():
            if id(parameter) in owner:
                raise TrainingError(f"DDP: a parameter is shared by {owner[id(parameter)]} and {name}; "
                                    f"{type(module).__name__}.ddp_parts must not overlap")
            owner[id(parameter)] = name
    outside = [name for name, parameter in module.named_parameters()
               if parameter.requires_grad and id(parameter) not in owner]
    if outside:
        raise TrainingError(f"DDP: trainable parameters outside {type(module).__name__}.ddp_parts "
                            f"{list(module.ddp_parts)} would not be synchronised: {', '.join(outside[:5])}")
