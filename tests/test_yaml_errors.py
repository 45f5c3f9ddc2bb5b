"""A YAML syntax error in a config file is one line, `error: FILE:LINE:COLUMN: YAML syntax error: …` (exit 1),
not PyYAML's traceback: an experiment or any group file on the search path, a sweeps/ file, an adopted run config.
Hydra's own composition errors (unknown experiment, misspelled key) stay as they are (tests/test_startup.py)."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from cli_helpers import run_cli
from sarexp.config import schema
from sarexp.config.locate import config_dir
from sarexp.config.yaml_errors import report_yaml_errors_in_one_line
from sarexp.errors import ConfigError

BROKEN = "# @package _global_\n# a new experiment, mistyped\nmodel: {num_layers: [2\n"
PROBLEM = ("YAML syntax error: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 3, "
           "column 21)")


@pytest.fixture
def one_line_sources():
    """Hydra's config sources as `sarexp.run.main` sets them up; Hydra's own ones back afterwards."""
    from hydra._internal.sources_registry import SourcesRegistry
    from hydra.core.plugins import Plugins

    Plugins.instance()
    registry = SourcesRegistry.instance()
    plain = dict(registry.types)
    report_yaml_errors_in_one_line()
    yield
    registry.types.clear()
    registry.types.update(plain)
    GlobalHydra.instance().clear()


def _compose_with(search_path, overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=[f"hydra.searchpath=[file://{search_path}]", *overrides])


def test_a_group_file_on_the_search_path(tmp_path, monkeypatch, one_line_sources):
    (tmp_path / "extra" / "experiment").mkdir(parents=True)
    (tmp_path / "extra" / "experiment" / "broken.yaml").write_text(BROKEN)
    (tmp_path / "extra" / "model").mkdir()
    (tmp_path / "extra" / "model" / "tabbed.yaml").write_text("d_model: 8\n\tnum_layers: 2\n")
    monkeypatch.chdir(tmp_path)  # shown relative to the working directory, as the user would type it
    with pytest.raises(SystemExit) as exit_info:
        _compose_with(tmp_path / "extra", ["experiment=broken"])
    assert exit_info.value.code == f"error: extra/experiment/broken.yaml:4:1: {PROBLEM}"
    with pytest.raises(SystemExit) as exit_info:
        _compose_with(tmp_path / "extra", ["model=tabbed"])
    assert exit_info.value.code == ("error: extra/model/tabbed.yaml:2:1: YAML syntax error: found character '\\t' "
                                    "that cannot start any token (while scanning for the next token)")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # Hydra's switch for the full traceback still gives it
    with pytest.raises(Exception, match="while parsing a flow sequence"):
        _compose_with(tmp_path / "extra", ["experiment=broken"])


def test_a_sweep_file(tmp_path, monkeypatch):
    (tmp_path / "broken_grid.yaml").write_text("hydra:\n  sweeper:\n    params:\n      optimizer.lr: choice(1, 2\n"
                                               "      seed: [1, 2\n")
    monkeypatch.setattr(schema, "sweeps_dir", lambda: tmp_path)
    with pytest.raises(ConfigError) as error:
        schema.register_schema()
    assert str(error.value) == (f"{tmp_path}/broken_grid.yaml:6:1: YAML syntax error: expected ',' or ']', but got "
                                "'<stream end>' (while parsing a flow sequence at line 5, column 13)")


def test_an_adopted_run_config(tmp_path):
    from sarexp.tasks.source_config import adopt_run_config

    (tmp_path / "config.yaml").write_text("model:\n  d_model: 8\n  d_model: 16\n")
    cfg = OmegaConf.create({"model": {"d_model": 4}})
    with pytest.raises(ConfigError) as error:
        adopt_run_config(cfg, tmp_path / "config.yaml", overrides=(set(), set()))
    assert str(error.value) == (f"{tmp_path}/config.yaml:3:3: YAML syntax error: found duplicate key d_model "
                                "(while constructing a mapping at line 2, column 3)")
    (tmp_path / "config.yaml").write_bytes(b"model: {d_model: 8}\n\xff\n")
    with pytest.raises(ConfigError) as error:
        adopt_run_config(cfg, tmp_path / "config.yaml", overrides=(set(), set()))
    assert str(error.value) == f"{tmp_path}/config.yaml: not UTF-8 text (invalid start byte); save the file as UTF-8"


@pytest.mark.slow
def test_cli_broken_experiment_is_one_line(tmp_path):
    (tmp_path / "extra" / "experiment").mkdir(parents=True)
    (tmp_path / "extra" / "experiment" / "broken.yaml").write_text(BROKEN)
    result = run_cli(["experiment=broken", f"hydra.searchpath=[file://{tmp_path / 'extra'}]"], cwd=tmp_path,
                     timeout=120)
    assert result.returncode == 1
    assert result.stderr == f"error: extra/experiment/broken.yaml:4:1: {PROBLEM}\n"
