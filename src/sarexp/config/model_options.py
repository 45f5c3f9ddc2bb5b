"""Keys of the `model` group that sarexp acts on itself instead of passing them to the network's constructor.

`model.compile` (default false, set in conf/config.yaml so `model.compile=true` works for every network)
asks for `torch.compile` of the network. It means the same for every network, so it is applied once, by
the builder after the system is built, and removed from the model node before anything is validated
against the network's signature or instantiated (`system.net: ${model}` then resolves without it).
"""

import copy
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from sarexp.errors import ConfigError

MODEL_OPTIONS: dict[str, type] = {"compile": bool}


def model_options(cfg: DictConfig) -> dict[str, Any]:
    """The options set in `cfg.model` (absent ones at their default, False), checked for their type."""
    model = cfg.get("model")
    options = {name: kind() for name, kind in MODEL_OPTIONS.items()}
    if not OmegaConf.is_dict(model):
        return options
    for name, kind in MODEL_OPTIONS.items():
        value = model.get(name, options[name])
        if not isinstance(value, kind):
            raise ConfigError(f"config key 'model.{name}' = {value!r} must be a {kind.__name__} (true or false)")
        options[name] = value
    return options


def without_model_options(cfg: DictConfig) -> DictConfig:
    """A deep copy of `cfg` whose `model` node holds only the network's constructor arguments."""
    stripped = copy.deepcopy(cfg)
    if OmegaConf.is_dict(stripped.get("model")):
        _drop_options(stripped.model)
    return stripped


def network_node(model: DictConfig) -> DictConfig:
    """A copy of a model node without sarexp's options, e.g. the `model` of another run's saved config."""
    node = copy.deepcopy(model)
    _drop_options(node)
    return node


def _drop_options(model: DictConfig) -> None:
    with open_dict(model):
        for name in MODEL_OPTIONS:
            model.pop(name, None)
