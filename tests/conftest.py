"""Shared fixtures: compose sarexp configs the way the CLI does, without starting a run."""

from pathlib import Path
from typing import Callable

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from sarexp.config.locate import config_dir
from sarexp.config.schema import register_schema

Composer = Callable[..., DictConfig]


@pytest.fixture
def compose_config(tmp_path: Path) -> Composer:
    """compose_config(overrides) → config with run dir and data root under tmp_path, `hydra` node removed
    (as the task function sees it) unless keep_hydra=True."""
    register_schema()

    def _compose(overrides: list[str] | None = None, keep_hydra: bool = False) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            paths = [f"paths.root_dir={tmp_path}", f"paths.run_dir={tmp_path / 'run'}"]
            cfg = compose("config", overrides=[*paths, *(overrides or [])], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        if not keep_hydra:
            with open_dict(cfg):
                del cfg["hydra"]
        return cfg

    yield _compose
    GlobalHydra.instance().clear()
