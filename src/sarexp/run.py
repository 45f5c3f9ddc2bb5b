"""The one entry point: `python -m sarexp experiment=NAME [overrides]` (or `sarexp ...`).

Composes the config, checks it, prints it as a tree and calls the task selected by `task=`; returns the
task's value (the monitored metric for training) so Hydra sweepers can optimise it.
"""

import logging
import sys
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig

from sarexp.config.locate import config_dir
from sarexp.config.schema import register_schema
from sarexp.config.validation import validate_config
from sarexp.errors import SarexpError
from sarexp.strategies.ddp import release_local_ranks
from sarexp.tree import print_config_tree

log = logging.getLogger(__name__)

register_schema()

_LIBRARY_LOGGERS = ("lightning", "lightning.fabric", "lightning.pytorch")


def _log_libraries_through_hydra() -> None:
    """Lightning installs its own stderr handlers when imported; drop them (after the imports) so its
    messages go through the handlers Hydra configured (terminal and run.log) once, not twice."""
    for name in _LIBRARY_LOGGERS:
        library_logger = logging.getLogger(name)
        library_logger.handlers.clear()
        library_logger.propagate = True


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _run(cfg: DictConfig) -> Any:
    try:
        validate_config(cfg)  # imports every _target_, Lightning included
        _log_libraries_through_hydra()
        if rank_zero_only.rank == 0:
            print_config_tree(cfg)
        task = instantiate(cfg.task)
        return task(cfg)
    except (SarexpError, InstantiationException) as raised:
        error = _user_error(raised)
        if error is None:
            raise
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            log.error("job failed: %s", error)
            raise error from None  # the sweeper records the user's error, not Hydra's wrapper
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        release_local_ranks()


def _user_error(raised: BaseException) -> SarexpError | None:
    """The SarexpError behind an exception: itself, or the one a constructor raised inside
    `instantiate` (Hydra wraps it in an InstantiationException)."""
    seen: BaseException | None = raised
    while seen is not None:
        if isinstance(seen, SarexpError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def main() -> None:
    """Console-script entry point (`sarexp`)."""
    _run()
