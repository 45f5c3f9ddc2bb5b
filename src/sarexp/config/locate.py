"""Find the config directory, whether sarexp runs from a checkout, an editable or a regular install."""

from importlib import resources
from pathlib import Path

from sarexp.errors import ConfigError


def config_dir() -> Path:
    """The `conf/` directory: packaged as `sarexp/conf` in a wheel, at the repository root in a checkout."""
    packaged = Path(str(resources.files("sarexp"))) / "conf"
    checkout = Path(__file__).resolve().parents[3] / "conf"
    for candidate in (packaged, checkout):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise ConfigError(
        f"sarexp's conf/ directory was not found (looked in {packaged} and {checkout}); reinstall sarexp"
    )
