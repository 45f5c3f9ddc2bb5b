"""The package is layered: no module of sarexp imports, directly or through others, a module that imports it back.

Every `import` statement counts, also one inside a function: a deferred import only postpones a circle to the
first call (models/unet.py ↔ models/unet_pretrained.py was one)."""

import ast
from pathlib import Path

import sarexp

PACKAGE = Path(sarexp.__file__).parent


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name → file, for every .py file of the package."""
    modules = {}
    for file in package.rglob("*.py"):
        parts = file.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return modules


def imported_modules(name: str, file: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `file` imports anywhere in it (`from a import b` names a.b when b is a module)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            package = name.split(".") if file.name == "__init__.py" else name.split(".")[:-1]
            anchor = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*anchor, *([node.module] if node.module else [])])
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return {module for module in found if module in modules and module != name}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each a set of mutual importers."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_the_cycle_finder_finds_a_circle_through_a_deferred_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import f\n")
    (package / "b.py").write_text("def f():\n    from . import c\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from pkg import a\n")
    modules = module_files(package)
    graph = {name: imported_modules(name, file, modules) for name, file in modules.items()}
    assert graph["pkg.d"] == {"pkg.a"}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_sarexp_has_no_import_cycles():
    modules = module_files(PACKAGE)
    graph = {name: imported_modules(name, file, modules) for name, file in modules.items()}
    assert len(graph) > 100 and graph["sarexp.models.unet_pretrained"] >= {"sarexp.models.unet"}
    assert import_cycles(graph) == []
