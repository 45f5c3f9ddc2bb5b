"""Checks and conversions of config values shared by the datamodules."""

from collections.abc import Mapping, Sequence
from typing import Any

from sarexp.errors import ConfigError


def check_positive(**values: int) -> None:
    """ConfigError naming the first data.<key> that is not a positive integer."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"data.{key} must be a positive integer, got {value!r}")


def plain(value: Any) -> Any:
    """Config containers (OmegaConf or not) as plain dicts and lists, for generators that check types."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(item) for item in value]
    return value
