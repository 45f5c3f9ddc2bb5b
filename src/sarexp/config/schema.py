"""Typed top-level keys of the primary config.

Registered in Hydra's ConfigStore as ``sarexp_schema`` and listed first in ``conf/config.yaml``'s defaults,
so a misspelled or mistyped top-level key (``sed=1``, ``seed=abc``) fails at composition, naming the key.
Group nodes are typed ``Any`` here: their keys are checked against the signature of their ``_target_``
(see :mod:`sarexp.config.validation`).
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class SarexpConfig:
    """The root of every composed config."""

    name: str = "default"
    seed: int = 0
    deterministic: bool = False
    resume: bool = True
    ckpt_path: Optional[str] = None
    monitor: str = "val/loss"
    monitor_mode: str = "min"
    task: Any = None
    paths: Any = field(default_factory=dict)
    data: Any = None
    model: Any = None
    loss: Any = None
    optimizer: Any = None
    scheduler: Any = None
    system: Any = None
    trainer: Any = None
    callbacks: Any = field(default_factory=dict)
    logger: Any = field(default_factory=dict)
    launcher: Any = field(default_factory=dict)


def register_schema() -> None:
    """Make ``sarexp_schema`` available to the defaults list (idempotent)."""
    ConfigStore.instance().store(name="sarexp_schema", node=SarexpConfig)
