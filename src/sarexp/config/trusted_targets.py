"""Which `_target_`s a config read from a file may name.

sarexp builds objects from configs it did not compose: the `.hydra/config.yaml` of the run whose checkpoint a
task loads (task=sample|likelihood|colorize), of the run that wrote a samples file (task=evaluate), of a feature
extractor or season classifier run, and a seed model folder's `metadata.json`. Such a file is data, but a
`_target_` in it is a call: `{_target_: torch.load, f: notes.pkl, weights_only: false}` runs a pickle. So every
`_target_` in it, nested ones and `_args_` included, interpolations resolved, must be on this list before
anything of the file is used:

- every `_target_` of the YAML files sarexp composes configs from: `conf/`, `sweeps/` and the other directories
  on the running job's search path (`--config-dir`, `hydra.searchpath`), read at check time, so the list follows
  conf/ with nothing to maintain (exact names: conf/ using `torch.optim.Adam` allows that, not `torch.*`);
- every `_target_` of the config being run (composed from those files and the command line);
- classes defined in the sarexp packages conf/ builds objects from (`sarexp.models`, `sarexp.systems`, …),
  named where they are defined (`sarexp.models.unet.torch.load` reaches `torch.load` through an import: refused);
- the `trusted_targets` entries of the command line: exact names, or `package.module.*` for the classes and
  functions defined in that module and below it.
"""

import inspect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig

from sarexp.config.locate import config_dir, sweeps_dir
from sarexp.errors import ConfigError

TARGET_KEY = "_target_"
OWN_PACKAGE = "sarexp."
MAX_DEPTH = 64  # nesting beyond any real config: refused rather than walked
_DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UntrustedTarget(ConfigError):
    """A config read from a file names a `_target_` that is not on the list."""

    def __init__(self, origin: str, key: str, target: Any) -> None:
        shown = target if isinstance(target, str) else repr(target)
        super().__init__(
            f"{origin}: {key}={shown} is not a trusted target; nothing was built (a config sarexp reads from a "
            f"file may only name the targets of its conf/ and sarexp's own classes; if you trust this file and "
            f"its code, add trusted_targets=[{shown}] to the command line)"
        )


@dataclass(frozen=True)
class TrustedTargets:
    """The allowlist: exact names, module prefixes (user entries) and sarexp packages whose classes are trusted."""

    names: frozenset[str]
    prefixes: tuple[str, ...] = ()
    own_packages: tuple[str, ...] = ()

    def allows(self, target: Any) -> bool:
        if not isinstance(target, str) or not _DOTTED_NAME.match(target):
            return False
        if target in self.names:
            return True
        if any(target.startswith(prefix) for prefix in self.prefixes):
            return _defined_at(target, classes_only=False)
        if any(target.startswith(package) for package in self.own_packages):
            return _defined_at(target, classes_only=True)
        return False

    def check(self, node: Any, origin: str) -> None:
        """Raise UntrustedTarget for the first `_target_` in `node` (a config or plain containers) not allowed:
        first those written in it (named by the key they have in the file), then those its interpolations make."""
        for resolve in (False, True):
            for key, target in target_entries(node, resolve=resolve):
                if not self.allows(target):
                    raise UntrustedTarget(origin, key, target)


def trusted_targets(cfg: DictConfig | None = None) -> TrustedTargets:
    """The allowlist for configs read while running `cfg` (the composed config, before anything is adopted)."""
    from_files = composed_targets()
    names = set(from_files)
    entries: list[str] = []
    if cfg is not None:
        names.update(target for _, target in target_entries(config_body(cfg)) if isinstance(target, str))
        entries = [str(entry) for entry in (cfg.get("trusted_targets") or [])]
    for entry in entries:
        if not _DOTTED_NAME.match(entry.removesuffix(".*")):
            raise ConfigError(f"trusted_targets entry {entry!r} is not a dotted name (package.module.Class, or "
                              "package.module.* for everything defined there)")
    names.update(entry for entry in entries if not entry.endswith(".*"))
    prefixes = tuple(entry[:-1] for entry in entries if entry.endswith(".*"))
    packages = sorted({".".join(name.split(".")[:2]) + "." for name in from_files
                       if name.startswith(OWN_PACKAGE) and name.count(".") >= 2})
    return TrustedTargets(frozenset(names), prefixes, tuple(packages))


def composed_targets() -> frozenset[str]:
    """The `_target_` names of every YAML file under conf/, sweeps/ and the job's other file search-path dirs."""
    directories = {config_dir().resolve(), sweeps_dir().resolve()}
    if HydraConfig.initialized():
        for source in HydraConfig.get().runtime.config_sources:
            if source.schema == "file" and Path(source.path).is_dir():
                directories.add(Path(source.path).resolve())
    return frozenset().union(*(_directory_targets(directory) for directory in sorted(directories)))


@lru_cache(maxsize=None)
def _directory_targets(directory: Path) -> frozenset[str]:
    names: set[str] = set()
    for path in sorted(directory.rglob("*.yaml")):
        try:
            content = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # a broken file adds nothing (the list only gets shorter); composing it reports it
        names.update(target for _, target in target_entries(content) if isinstance(target, str))
    return frozenset(names)


def target_entries(node: Any, resolve: bool = True, path: str = "", depth: int = 0,
                   seen: dict[int, Any] | None = None) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every `_target_` in a config or plain containers. resolve=True: interpolations
    resolved (a value that cannot be resolved now is given as written: it cannot be resolved when instantiating
    either); resolve=False: interpolated values skipped, the targets as written in the file."""
    seen = {} if seen is None else seen  # id → node, kept alive so that no id is reused during the walk
    if isinstance(node, (DictConfig, ListConfig, dict, list, tuple)):
        if id(node) in seen:
            return
        seen[id(node)] = node
    if depth > MAX_DEPTH:
        yield path, f"<nested more than {MAX_DEPTH} levels>"
        return
    for key, child in _children(node, resolve):
        child_path = f"{path}{key}" if key.startswith("[") or not path else f"{path}.{key}"
        if key == TARGET_KEY:
            yield child_path, child
        else:
            yield from target_entries(child, resolve, child_path, depth + 1, seen)


def _children(node: Any, resolve: bool) -> Iterable[tuple[str, Any]]:
    if isinstance(node, (DictConfig, ListConfig)):
        if node._is_none() or node._is_missing():
            return []
        keys = list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
        if not resolve:
            keys = [key for key in keys if not node._get_node(key)._is_interpolation()]
        return [(str(key) if isinstance(node, DictConfig) else f"[{key}]", _resolved(node, key)) for key in keys]
    if isinstance(node, dict):
        return [(str(key), value) for key, value in node.items()]
    if isinstance(node, (list, tuple)):
        return [(f"[{index}]", value) for index, value in enumerate(node)]
    return []


def _resolved(node: DictConfig | ListConfig, key: Any) -> Any:
    try:
        return node[key]
    except Exception:  # OmegaConf raises several unrelated types for unresolvable or missing values
        child = node._get_node(key)
        return None if child is None else child._value()


def config_body(cfg: DictConfig) -> dict[str, Any]:
    """The top-level entries of a composed config without Hydra's own node (as the task function sees it)."""
    return {str(key): _resolved(cfg, key) for key in cfg.keys() if key != "hydra"}


def _defined_at(target: str, classes_only: bool) -> bool:
    """Whether `target` names a class (or, for user prefixes, a class or function) where it is defined."""
    from hydra.utils import get_object

    try:
        found = get_object(target)
    except Exception:  # not importable: not a target anyone can build
        return False
    if classes_only and not inspect.isclass(found):
        return False
    if not (inspect.isclass(found) or inspect.isfunction(found)):
        return False
    return f"{found.__module__}.{found.__qualname__}" == target

