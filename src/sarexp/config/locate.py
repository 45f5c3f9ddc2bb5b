"""Find the config directory, whether sarexp runs from a checkout, an editable or a regular install."""

from importlib import resources
from pathlib import Path

from sarexp.errors import ConfigError


def config_dir() -> Path:
    """The `conf/` directory: packaged as `sarexp/conf` in a wheel, at the repository root in a checkout."""
    return _top_level_dir("conf", "config.yaml")


def sweeps_dir() -> Path:
    """The `sweeps/` directory (the `sweep` config group), packaged or in the checkout like `conf/`."""
    return _top_level_dir("sweeps", None)


def _top_level_dir(name: str, marker: str | None) -> Path:
    packaged = Path(str(resources.files("sarexp"))) / name
    checkout = Path(__file__).resolve().parents[3] / name
    for candidate in (packaged, checkout):
        if candidate.is_dir() and (marker is None or (candidate / marker).is_file()):
            return candidate
    raise ConfigError(
        f"sarexp's {name}/ directory was not found (looked in {packaged} and {checkout}); reinstall sarexp"
    )
