"""nbflow's imports point one way, down the layers, and form no circle.

Every import in the package counts: at module level, inside functions, under
``TYPE_CHECKING``, and ``importlib.import_module("nbflow...")`` with a literal
name. docs/architecture.md says what lives in each layer.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "nbflow"

# Lowest first. A module may import its own layer and the layers before it, never one after.
LAYERS: list[tuple[str, ...]] = [
    ("nbflow.errors", "nbflow._version", "nbflow.settings"),
    ("nbflow.core",),
    ("nbflow.fingerprint",),
    ("nbflow.persistence",),
    ("nbflow.parallel",),
    ("nbflow.sweeps",),
    ("nbflow.viz",),
    ("nbflow.notebook",),
    ("nbflow.widgets",),
    # The facade: what users import.
    ("nbflow", "nbflow.executors", "nbflow.burr", "nbflow.examples"),
]

# Deprecated re-exports of moved names, kept for one release. Each may import where the names went.
DEPRECATED_SHIMS = {
    "nbflow.sweeps.live": {"nbflow.notebook.live", "nbflow.sweeps.progress"},
    "nbflow.parallel.executors": {"nbflow.parallel.registry"},
}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
PACKAGES = {_module_name(p) for p in ROOT.rglob("__init__.py")}


def _imports(module: str, source: str | None = None) -> set[str]:
    """The nbflow modules ``module`` imports, anywhere in its source."""
    if source is None:
        source = MODULES[module].read_text()
    package = module if module in PACKAGES else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from nbflow.x import y` imports nbflow.x, and nbflow.x.y too when y is a module.
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return {m for m in found if m == "nbflow" or m.startswith("nbflow.")}


def _layer(module: str) -> int:
    best, level = "", -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, level = prefix, i
    assert level >= 0, f"{module} is in no layer: add it to LAYERS"
    return level


EDGES = {module: _imports(module) for module in MODULES}


def test_every_module_is_in_a_layer():
    """Each module of the package belongs to one of the layers (a new package must be placed)."""
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    """Imports point down: core never imports persistence, parallel never sweeps, sweeps never notebook."""
    allowed = DEPRECATED_SHIMS.get(module, set())
    upward = sorted(t for t in EDGES[module] if _layer(t) > _layer(module) and t not in allowed)
    assert not upward, f"{module} (layer {LAYERS[_layer(module)]}) imports {upward} from above"


def test_no_import_circles():
    """No module reaches itself through imports, apart from a package __init__ re-exporting its own modules."""
    graph: dict[str, set[str]] = {}
    for module, targets in EDGES.items():
        own = {t for t in targets if module in PACKAGES and t.startswith(module + ".")}
        shim = DEPRECATED_SHIMS.get(module, set())
        graph[module] = {t for t in targets if t in MODULES and t != module} - own - shim
    circles = _strongly_connected(graph)
    assert not circles, f"import circles: {circles}"


def test_the_walk_sees_imports_inside_functions_relative_ones_and_importlib_calls():
    """A lazy import, a relative one and importlib.import_module("nbflow...") all count as imports."""
    source = (
        "import importlib\n"
        "def f():\n"
        "    from nbflow.viz import visualize\n"
        "    from ..parallel import map\n"
        "    importlib.import_module('nbflow.widgets')\n"
    )
    found = _imports("nbflow.core.application", source)
    assert {"nbflow.viz", "nbflow.parallel", "nbflow.parallel.map", "nbflow.widgets"} <= found
    assert all(_layer(m) > _layer("nbflow.core.application") for m in found)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found
