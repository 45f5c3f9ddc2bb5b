"""A YAML syntax error is one line: `FILE:LINE:COLUMN: YAML syntax error: PROBLEM (CONTEXT)`.

A new experiment is one YAML file, so a typo in one is common, and PyYAML reports it as a 40-line traceback
from inside its parser. The one line covers every YAML file sarexp reads: the files Hydra composes (conf/,
`--config-dir`, `hydra.searchpath`) through :func:`report_yaml_errors_in_one_line`, the `sweeps/` files and the
run configs sarexp adopts through :func:`load_config_file`. Only Hydra and PyYAML are imported (start-up cost).
"""

import os
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from sarexp.errors import ConfigError

_SCHEMES = ("file", "pkg")  # Hydra's config sources that read YAML files


def yaml_error_line(error: yaml.YAMLError | UnicodeDecodeError, file: str | Path) -> str:
    """The parser's message with the file, line and column (1-based) of the problem, as one line."""
    mark = getattr(error, "problem_mark", None)
    name = mark.name if mark is not None and Path(str(mark.name)).is_file() else file
    shown = display_path(name)
    if isinstance(error, UnicodeDecodeError):
        return f"{shown}: not UTF-8 text ({error.reason}); save the file as UTF-8"
    if not isinstance(error, yaml.MarkedYAMLError) or mark is None:
        return f"{shown}: YAML syntax error: {' '.join(str(error).split())}"
    problem = error.problem or error.context or "invalid YAML"
    context = ""
    if error.problem and error.context:
        context_mark = error.context_mark
        where = "" if context_mark is None else f" at line {context_mark.line + 1}, column {context_mark.column + 1}"
        context = f" ({error.context}{where})"
    return f"{shown}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {problem}{context}"


def display_path(path: str | Path) -> str:
    """`path` relative to the working directory when it is inside it (as the user typed it), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def load_config_file(path: Path) -> DictConfig:
    """A YAML config file (e.g. a run's `.hydra/config.yaml`) as a DictConfig; a syntax error, or a file that is
    not a mapping of keys, is a one-line ConfigError naming the file."""
    try:
        config = OmegaConf.load(path)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(yaml_error_line(error, path)) from None
    if not isinstance(config, DictConfig):
        raise ConfigError(f"{display_path(path)}: holds a {type(config).__name__}, expected a mapping of config keys")
    return config


class _OneLineYamlErrors:
    """Mixed into Hydra's file and package config sources: a YAML error ends the command with one line."""

    def load_config(self, config_path: str) -> Any:
        try:
            return super().load_config(config_path)  # type: ignore[misc]
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            # SystemExit passes Hydra's reporting (which prints PyYAML's traceback) and prints the line, exit 1
            raise SystemExit(f"error: {yaml_error_line(error, self._location(config_path))}") from None

    def _location(self, config_path: str) -> str:
        name = self._normalize_file_name(config_path)  # type: ignore[attr-defined]
        if self.scheme() == "file":  # type: ignore[attr-defined]
            return os.path.join(self.path, name)  # type: ignore[attr-defined]
        return f"{self.full_path()}/{name}"  # type: ignore[attr-defined]


def report_yaml_errors_in_one_line() -> None:
    """Make Hydra read config files through sources that report a YAML error as one line (idempotent).

    Hydra offers no hook for this: its registry of config sources is replaced per scheme, after Hydra's plugin
    discovery has filled it (so discovery cannot put the plain sources back)."""
    from hydra._internal.sources_registry import SourcesRegistry
    from hydra.core.plugins import Plugins

    Plugins.instance()
    registry = SourcesRegistry.instance()
    for scheme in _SCHEMES:
        source = registry.resolve(scheme)
        if not issubclass(source, _OneLineYamlErrors):
            registry.types[scheme] = type(source.__name__, (_OneLineYamlErrors, source), {})
