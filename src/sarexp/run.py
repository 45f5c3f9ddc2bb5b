"""The one entry point: `python -m sarexp experiment=NAME [overrides]` (or `sarexp ...`).

Composes the config, checks it, prints it as a tree and calls the task selected by `task=`; returns the
task's value (the monitored metric for training) so Hydra sweepers can optimise it.

Start-up cost matters: `--cfg job`, `--help`, `--info` and composition errors never reach `_run`, so this
module imports only Hydra and OmegaConf. Everything heavy (torch, Lightning, the task's targets) is
imported inside `_run`, when a task really runs (tests/test_startup.py checks it).
"""

import logging
import os
import sys
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig

from sarexp.config.locate import config_dir
from sarexp.config.schema import register_schema
from sarexp.config.yaml_errors import report_yaml_errors_in_one_line
from sarexp.errors import ConfigError, SarexpError

log = logging.getLogger(__name__)

try:
    register_schema()
except ConfigError as broken_sweep:  # a sweeps/*.yaml that does not parse: the one file read before Hydra starts
    raise SystemExit(f"error: {broken_sweep}") from None

_LIBRARY_LOGGERS = ("lightning", "lightning.fabric", "lightning.pytorch")
# Lightning's rank_zero_only reads these, in this order, to know a process's global rank.
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def _log_libraries_through_hydra() -> None:
    """Lightning installs its own stderr handlers when imported; drop them (after the imports) so its
    messages go through the handlers Hydra configured (terminal and run.log) once, not twice."""
    for name in _LIBRARY_LOGGERS:
        library_logger = logging.getLogger(name)
        library_logger.handlers.clear()
        library_logger.propagate = True


def _global_rank() -> int:
    """This process's rank as Lightning's `rank_zero_only` sees it, without importing Lightning."""
    for name in _RANK_VARIABLES:
        value = os.environ.get(name)
        if value is not None:
            return int(value)
    return 0


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _run(cfg: DictConfig) -> Any:
    try:
        from hydra.utils import instantiate

        from sarexp.config.validation import validate_config
        from sarexp.tree import print_config_tree

        validate_config(cfg)  # imports the targets it checks, Lightning included
        _log_libraries_through_hydra()
        if _global_rank() == 0:
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
        _release_local_ranks()


def _release_local_ranks() -> None:
    """Close the DDP ranks a job launched. Only a job that imported the Hydra-aware strategy can have
    launched any, so a job that never did (a config error, a CPU run) does not import torch here."""
    ddp = sys.modules.get("sarexp.strategies.ddp")
    if ddp is not None:
        ddp.release_local_ranks()


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
    """Console-script entry point (`sarexp`); a YAML syntax error in a config file is one line."""
    report_yaml_errors_in_one_line()
    _run()
