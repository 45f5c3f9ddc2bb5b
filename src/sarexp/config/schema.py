"""Typed top-level keys of the primary config.

Registered in Hydra's ConfigStore as ``sarexp_schema`` and listed first in ``conf/config.yaml``'s defaults,
so a misspelled or mistyped top-level key (``sed=1``, ``seed=abc``) fails at composition, naming the key.
Group nodes are typed ``Any`` here: their keys are checked against the signature of their ``_target_``
(see :mod:`sarexp.config.validation`).
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore

from sarexp.config.locate import sweeps_dir
from sarexp.config.resolvers import register_resolvers
from sarexp.config.yaml_errors import load_config_file


class MonitorMode(str, Enum):
    """Whether a lower or a higher `monitor` value is better (a str, so Lightning takes it as is)."""

    min = "min"
    max = "max"


@dataclass
class SarexpConfig:
    """The root of every composed config."""

    name: str = "default"
    seed: int = 0
    deterministic: bool = False
    resume: bool = True
    ckpt_path: Optional[str] = None
    monitor: str = "val/loss"
    monitor_mode: MonitorMode = MonitorMode.min
    task: Any = None
    paths: Any = field(default_factory=dict)
    data: Any = None
    model: Any = None
    loss: Any = None
    optimizer: Any = None
    scheduler: Any = None
    system: Any = None
    diffusion: Any = None    # generative systems: the diffusion process (conf/diffusion/)
    sampler: Any = None      # generative systems: how task=sample draws (conf/sampler/)
    scene: Any = None        # dense systems: whole-scene prediction for task=predict (conf/scene/)
    clip_checkpoint: Optional[str] = None  # colorization: the text encoder (a colorization_clip checkpoint)
    vae_checkpoint: Optional[str] = None   # colorization: the autoencoder (a colorization_vae checkpoint)
    # extra `_target_`s a config read from a file (an adopted run's, a seed folder's) may name:
    # exact names or `package.module.*` (sarexp.config.trusted_targets)
    trusted_targets: List[str] = field(default_factory=list)
    trainer: Any = None
    callbacks: Any = field(default_factory=dict)
    logger: Any = field(default_factory=dict)
    launcher: Any = field(default_factory=dict)


def register_schema() -> None:
    """Make ``sarexp_schema``, the ``sweep`` group and sarexp's resolvers available (idempotent).

    Search spaces live in the top-level ``sweeps/`` directory rather than under ``conf/``; each file
    there becomes the option ``sweep=<file name>`` and is merged at the top level (``_global_``). A sweep file
    with a YAML syntax error is a one-line ConfigError naming the file, line and column.
    """
    register_resolvers()
    store = ConfigStore.instance()
    store.store(name="sarexp_schema", node=SarexpConfig)
    for path in sorted(sweeps_dir().glob("*.yaml")):
        store.store(group="sweep", name=path.stem, node=load_config_file(path), package="_global_")
