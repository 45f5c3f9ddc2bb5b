"""Check every `_target_` node of a composed config against the signature it will be called with.

Hydra's struct mode already rejects command-line overrides of keys that do not exist; this catches what
struct mode cannot: misspelled keys inside YAML files (or added with `+`) and values of the wrong type,
before any data is read or any model is built, with an error that names the full key. Keys are checked
first against signatures read from source (`sarexp.config.signatures`, no imports), so such typos are
reported before torch or Lightning load; only the type checks need the imported callables.
"""

import difflib
import inspect
import typing
from pathlib import Path
from typing import Any, Callable, Iterator

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from typeguard import CollectionCheckStrategy, TypeCheckError, check_type

from sarexp.config.model_options import model_options, without_model_options
from sarexp.config.signatures import static_parameters
from sarexp.config.value_checks import check_values
from sarexp.errors import ConfigError

_HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def resolve_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain containers with interpolations resolved, `hydra` node excluded."""
    body = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    try:
        container = OmegaConf.to_container(body, resolve=True, throw_on_missing=True)
    except Exception as error:  # OmegaConf raises several unrelated types here
        key = getattr(error, "full_key", None) or "?"
        raise ConfigError(f"config key '{key}' cannot be resolved: {_first_line(error)}") from None
    return container


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first `_target_` node whose keys or values do not fit its callable."""
    model_options(cfg)  # sarexp's own model keys (model.compile): checked here, not passed to the network
    container = resolve_config(without_model_options(cfg))
    nodes = list(_target_nodes(container, ""))
    for path, node in nodes:  # keys against signatures read from source: no imports, errors in < 1 s
        static = static_parameters(node["_target_"])
        if static is not None:
            _check_keys(path, node, *static)
    for path, node in nodes:  # then the imported callables: keys again, and value types
        _validate_node(path, node)
    check_values(container)  # out-of-range values and hardware: sarexp.config.value_checks


def _target_nodes(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (dotted path, node) for every dict with a `_target_`, parents before children."""
    if isinstance(value, dict):
        if "_target_" in value:
            yield path, value
        for key, child in value.items():
            if key not in _HYDRA_KEYS:
                yield from _target_nodes(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _target_nodes(child, f"{path}[{index}]")


def _validate_node(path: str, node: dict[str, Any]) -> None:
    target_name = node["_target_"]
    prefix = f"{path}." if path else ""
    try:
        target = get_object(target_name)
    except Exception as error:
        raise ConfigError(
            f"config key '{prefix}_target_': cannot import '{target_name}' ({_first_line(error)})"
        ) from None
    parameters, accepts_any_keyword = _parameters(target)
    if parameters is None:
        return
    given = _check_keys(path, node, parameters, accepts_any_keyword)
    hints = _type_hints(target)
    for key, value in given.items():
        if key in hints and not _holds_targets(value) and not _fits(value, hints[key]):
            raise ConfigError(
                f"config key '{prefix}{key}' = {value!r} is not a valid {_type_name(hints[key])} "
                f"(argument of {target_name})"
            )


def _check_keys(
    path: str, node: dict[str, Any], parameters: dict[str, inspect.Parameter], accepts_any_keyword: bool
) -> dict[str, Any]:
    """Raise for a key the callable does not take or a required one not set; return the given keys."""
    target_name = node["_target_"]
    prefix = f"{path}." if path else ""
    given = {key: value for key, value in node.items() if key not in _HYDRA_KEYS}
    if not accepts_any_keyword:
        for key in given:
            if key not in parameters:
                raise ConfigError(
                    f"config key '{prefix}{key}' is not an argument of {target_name}{_suggestion(key, parameters)}"
                )
    if not node.get("_partial_", False):
        for name, parameter in parameters.items():
            if parameter.default is inspect.Parameter.empty and name not in given:
                raise ConfigError(f"config key '{prefix}{name}' is required by {target_name} but not set")
    return given


def _callable_for_signature(target: Any) -> Callable[..., Any]:
    return target.__init__ if inspect.isclass(target) else target


def _parameters(target: Any) -> tuple[dict[str, inspect.Parameter] | None, bool]:
    """Named parameters a config may set, and whether **kwargs accepts anything else."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None, True
    named = {
        name: parameter
        for name, parameter in signature.parameters.items()
        if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    return named, accepts_any


def _type_hints(target: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(_callable_for_signature(target))
    except Exception:  # unresolvable forward references: skip type checks, keep key checks
        return {}


def _holds_targets(value: Any) -> bool:
    """Values that Hydra turns into objects are checked as nodes of their own, not against the hint."""
    if isinstance(value, dict):
        return "_target_" in value or any(_holds_targets(child) for child in value.values())
    if isinstance(value, list):
        return any(_holds_targets(child) for child in value)
    return False


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a hint, allowing the conversions YAML cannot express (tuple, Path)."""
    candidates = [value]
    if isinstance(value, list):
        candidates.append(tuple(value))
    if isinstance(value, str):
        candidates.append(Path(value))
    for candidate in candidates:
        try:
            check_type(candidate, hint, collection_check_strategy=CollectionCheckStrategy.ALL_ITEMS)
            return True
        except TypeCheckError:
            continue
        except Exception:  # hints typeguard cannot check (e.g. unresolved generics): accept
            return True
    return False


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _suggestion(key: str, parameters: dict[str, inspect.Parameter]) -> str:
    close = difflib.get_close_matches(key, list(parameters), n=1)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; valid keys: {', '.join(sorted(parameters))}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
