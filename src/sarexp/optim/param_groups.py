"""Parameter groups from per-parameter hints.

A module marks parameters that need their own optimizer settings with an attribute
``param._optim = {"lr": ..., "weight_decay": ...}`` (the S4 convention: the state-space parameters
A, dt and B train with a small learning rate and no weight decay). A hinted learning rate is an upper
bound: the group uses ``min(hint, base lr)`` so a sweep that lowers the base lr lowers it too.
A hint ``lr_scale`` multiplies that learning rate (layer-wise lr decay, as timm's layer-decay groups carry
``lr_scale``); schedulers then scale each group's own initial lr.
"""

from functools import partial
from typing import Any, Callable

from torch import nn
from torch.optim import Optimizer


def parameter_groups(module: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """One group of unhinted parameters, plus one group per distinct hint."""
    plain: list[nn.Parameter] = []
    hinted: dict[tuple[tuple[str, Any], ...], list[nn.Parameter]] = {}
    for parameter in module.parameters():
        if not parameter.requires_grad:
            continue
        hint = getattr(parameter, "_optim", None)
        if hint:
            hinted.setdefault(tuple(sorted(hint.items())), []).append(parameter)
        else:
            plain.append(parameter)
    groups = [{"params": plain, "lr": lr, "weight_decay": weight_decay}] if plain else []
    for hint_items, params in hinted.items():
        hint = dict(hint_items)
        groups.append(
            {
                "params": params,
                "lr": min(hint.get("lr", lr), lr) * hint.get("lr_scale", 1.0),
                "weight_decay": hint.get("weight_decay", weight_decay),
            }
        )
    return groups


def build_optimizer(factory: Callable[..., Optimizer], module: nn.Module) -> Optimizer:
    """Call an optimizer partial from config with the hinted groups of `module`."""
    keywords = factory.keywords if isinstance(factory, partial) else {}
    lr = keywords.get("lr", 1e-3)
    weight_decay = keywords.get("weight_decay", 0.0)
    return factory(parameter_groups(module, lr, weight_decay))


def lightning_optimization(
    optimizer: Callable[..., Optimizer], scheduler: Callable[..., Any] | None, module: nn.Module, total_steps: int
) -> Optimizer | dict[str, Any]:
    """What a system's `configure_optimizers` returns: the optimizer over `module`'s hinted groups and,
    when configured, a schedule stepped every optimizer step over `total_steps`."""
    built = build_optimizer(optimizer, module)
    if scheduler is None:
        return built
    return {"optimizer": built, "lr_scheduler": {"scheduler": scheduler(built, total_steps=int(total_steps)),
                                                 "interval": "step"}}
