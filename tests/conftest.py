"""Shared fixtures: compose sarexp configs the way the CLI does, without starting a run."""

from pathlib import Path
from typing import Callable

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from inprocess import compose_run

Composer = Callable[..., DictConfig]


@pytest.fixture
def compose_config(tmp_path: Path) -> Composer:
    """compose_config(overrides) → config with run dir and data root under tmp_path, `hydra` node removed
    (as the task function sees it) unless keep_hydra=True."""

    def _compose(overrides: list[str] | None = None, keep_hydra: bool = False) -> DictConfig:
        return compose_run(tmp_path, tmp_path / "run", overrides or [], keep_hydra)

    yield _compose
    GlobalHydra.instance().clear()
