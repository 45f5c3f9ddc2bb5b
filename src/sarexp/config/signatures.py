"""Read a `_target_`'s parameters from its source file, without importing it (or torch, or Lightning).

Validation checks config keys in two passes: first against these statically read signatures, so a
misspelled or missing key (`+model.hiden_size=3`) fails in well under a second; then against the imported
callables, which also checks value types. Reading is deliberately conservative: whenever the source
could mean something else than it shows (a decorator, a metaclass, `__new__`, a name bound by anything
but a plain import, class or def), it returns None and the import-based pass decides. The one decorator it
reads is sarexp's own `passes_keywords_to(Target)` (sarexp.config.forwarding): the factory's parameters, then
Target's, all keyword-only, as the decorator declares them at run time.
"""

import ast
import importlib.machinery
import inspect
from functools import lru_cache
from pathlib import Path

_MAX_HOPS = 8  # re-exports followed (`from .trainer import Trainer` in a package __init__)
_FORWARDING = ("sarexp.config.forwarding", "passes_keywords_to")  # the decorator read from source


def static_parameters(dotted: str) -> tuple[dict[str, inspect.Parameter], bool] | None:
    """(named parameters, accepts **kwargs) of the callable `dotted` names, as `inspect.signature` gives
    them, or None when they cannot be read safely from source."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        path = _module_file(".".join(parts[:split]))
        if path is not None:
            if len(parts) - split != 1:
                return None  # nested attributes (Class.method): leave to the import-based pass
            return _lookup(path, ".".join(parts[:split]), parts[-1], _MAX_HOPS)
    return None


@lru_cache(maxsize=None)
def _module_file(module: str) -> Path | None:
    """The .py file of `module`, found on sys.path without executing any package's __init__."""
    locations: list[str] | None = None
    spec = None
    names = module.split(".")
    for index in range(len(names)):
        spec = importlib.machinery.PathFinder.find_spec(".".join(names[: index + 1]), locations)
        if spec is None:
            return None
        locations = list(spec.submodule_search_locations or [])
        if index < len(names) - 1 and not locations:
            return None
    origin = getattr(spec, "origin", None)
    return Path(origin) if origin and origin.endswith(".py") else None


@lru_cache(maxsize=None)
def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _lookup(path: Path, module: str, name: str, hops: int) -> tuple[dict[str, inspect.Parameter], bool] | None:
    tree = _parse(path)
    if tree is None or hops == 0:
        return None
    bindings = [node for node in tree.body if _binds(node, name)]
    if len(bindings) != 1:  # unbound, or rebound (conditional definitions): not safe to read
        return None
    node = bindings[0]
    if isinstance(node, ast.FunctionDef):
        if not node.decorator_list:
            return _from_arguments(node.args, drop_first=False)
        target = _forwarded_to(tree, module, path, node)
        passed = _lookup(path, module, target, hops - 1) if target else None
        return None if passed is None else _keyword_only(_from_arguments(node.args, drop_first=False)[0], passed)
    if isinstance(node, ast.ClassDef):
        return _class_parameters(node)
    if isinstance(node, ast.ImportFrom):
        source = _absolute(node, module, path)
        original = next(alias.name for alias in node.names if (alias.asname or alias.name) == name)
        source_path = _module_file(source) if source else None
        return _lookup(source_path, source, original, hops - 1) if source_path else None
    return None


def _forwarded_to(tree: ast.Module, module: str, path: Path, node: ast.FunctionDef) -> str | None:
    """The name of Target when `node`'s only decorator is `@passes_keywords_to(Target)`, imported from
    sarexp.config.forwarding; else None."""
    if len(node.decorator_list) != 1:
        return None
    call = node.decorator_list[0]
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.keywords
            and len(call.args) == 1 and isinstance(call.args[0], ast.Name)):
        return None
    bindings = [statement for statement in tree.body if _binds(statement, call.func.id)]
    if len(bindings) != 1 or not isinstance(bindings[0], ast.ImportFrom):
        return None
    imported = next(alias.name for alias in bindings[0].names if (alias.asname or alias.name) == call.func.id)
    return call.args[0].id if (_absolute(bindings[0], module, path), imported) == _FORWARDING else None


def _keyword_only(own: dict[str, inspect.Parameter], passed: tuple[dict[str, inspect.Parameter], bool]
                  ) -> tuple[dict[str, inspect.Parameter], bool]:
    """The factory's own parameters, then those it passes on, all keyword-only (see sarexp.config.forwarding)."""
    parameters, accepts_any = passed
    merged = {**own, **{name: parameter for name, parameter in parameters.items() if name not in own}}
    keyword_only = {name: parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY) for name, parameter in merged.items()}
    return keyword_only, accepts_any


def _binds(node: ast.stmt, name: str) -> bool:
    """Whether a top-level statement binds `name` (anywhere inside it, for if/try/with/loops)."""
    for child in ast.walk(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and child.name == name:
            return True
        if isinstance(child, (ast.Import, ast.ImportFrom)) and any(
            (alias.asname or alias.name.split(".")[0]) == name for alias in child.names
        ):
            return True
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store) and child.id == name:
            return True
    return False


def _absolute(node: ast.ImportFrom, module: str, path: Path) -> str | None:
    if node.level == 0:
        return node.module
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if node.level - 1 > len(package):
        return None
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])]) or None


def _class_parameters(node: ast.ClassDef) -> tuple[dict[str, inspect.Parameter], bool] | None:
    """The class's own undecorated `__init__` (which inspect.signature uses first in the MRO), or None."""
    if node.decorator_list or node.keywords:  # dataclasses, metaclasses: generated signatures
        return None
    methods = {item.name: item for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assigned = {target.id for item in node.body if isinstance(item, ast.Assign)
                for target in item.targets if isinstance(target, ast.Name)}
    init = methods.get("__init__")
    if init is None or init.decorator_list or {"__new__", "__signature__", "__call__"} & (set(methods) | assigned):
        return None
    if "__init__" in assigned:
        return None
    return _from_arguments(init.args, drop_first=True)


def _from_arguments(arguments: ast.arguments, drop_first: bool) -> tuple[dict[str, inspect.Parameter], bool]:
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    parameters: dict[str, inspect.Parameter] = {}
    kinds = [inspect.Parameter.POSITIONAL_ONLY] * len(arguments.posonlyargs)
    kinds += [inspect.Parameter.POSITIONAL_OR_KEYWORD] * len(arguments.args)
    start = 1 if drop_first else 0
    for argument, default, kind in list(zip(positional, defaults, kinds))[start:]:
        if kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            parameters[argument.arg] = _parameter(argument.arg, kind, default is not None)
    for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults):
        parameters[argument.arg] = _parameter(argument.arg, inspect.Parameter.KEYWORD_ONLY, default is not None)
    return parameters, arguments.kwarg is not None


def _parameter(name: str, kind: inspect._ParameterKind, has_default: bool) -> inspect.Parameter:
    """A parameter whose default is a placeholder: only whether there is one matters to the key checks."""
    return inspect.Parameter(name, kind, default=... if has_default else inspect.Parameter.empty)

