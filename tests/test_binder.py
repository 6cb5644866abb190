"""binder/ holds what Binder (repo2docker) needs to open notebooks/ with widgets and Graphviz working."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import json
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

ROOT = Path(__file__).parents[1]
BINDER = ROOT / "binder"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCAL = re.compile(r"^-e\s+\.(\[(?P<extras>[^\]]*)\])?$")

# The extra a part of nbflow needs beyond its core dependencies.
MODULE_EXTRAS = {"nbflow.examples": "examples"}


def _lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _repo_extras() -> set[str]:
    local = [m for line in _lines(BINDER / "requirements.txt") if (m := LOCAL.match(line))]
    assert len(local) == 1, "binder/requirements.txt must install this repository once, as `-e .[extras]`"
    return {e.strip() for e in (local[0]["extras"] or "").split(",") if e.strip()}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _provided() -> frozenset[str]:
    """Every distribution binder/requirements.txt installs, following dependencies as installed here."""
    roots = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in _repo_extras():
        roots += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]]
    roots += [Requirement(line) for line in _lines(BINDER / "requirements.txt") if not LOCAL.match(line)]
    seen: set[str] = {"nbflow"}
    todo = roots
    while todo:
        req = todo.pop()
        name = _canonical(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here, so its own dependencies cannot be followed
        for spec in map(Requirement, requires):
            wanted = [{"extra": e} for e in (req.extras or {""})] + [{"extra": ""}]
            if spec.marker is None or any(spec.marker.evaluate(env) for env in wanted):
                todo.append(spec)
    return frozenset(seen)


@functools.cache
def _owners() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _imports(source: str) -> set[str]:
    if source.startswith("%%"):
        source = source.split("\n", 1)[1] if "\n" in source else ""  # a cell magic's body
    source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()  # a cell magic whose body is not Python
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _notebook_imports(path: Path) -> set[str]:
    cells = json.loads(path.read_text())["cells"]
    found = set()
    for cell in cells:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            found |= _imports(source)
            if re.search(r"^%load_ext\s+nbflow\b", source, flags=re.M):
                found.add("nbflow")
    return found


def test_binder_apt_installs_graphviz():
    """apt.txt installs Graphviz, whose `dot` binary draws the graphs (pip cannot install it)."""
    assert "graphviz" in _lines(BINDER / "apt.txt")


def test_binder_requirements_install_the_repo_with_notebook_extras_and_jupyterlab():
    """requirements.txt installs this repository with dask, parquet and examples, plus JupyterLab and ipywidgets."""
    assert {"dask", "parquet", "examples"} <= _repo_extras()
    named = {
        _canonical(Requirement(line).name)
        for line in _lines(BINDER / "requirements.txt")
        if not LOCAL.match(line)
    }
    assert {"jupyterlab", "ipywidgets"} <= named


def test_binder_requirements_name_only_extras_pyproject_defines():
    """Each extra in requirements.txt exists in pyproject.toml, so pip does not silently skip it."""
    defined = set(PYPROJECT["project"]["optional-dependencies"])
    assert _repo_extras() <= defined, f"unknown extras: {sorted(_repo_extras() - defined)}"


def test_binder_postbuild_only_with_a_reason():
    """A postBuild script, if there is one, says in a comment why it is needed."""
    post_build = BINDER / "postBuild"
    if post_build.exists():
        assert any(
            line.startswith("#") and len(line) > 20 for line in post_build.read_text().splitlines()[1:]
        )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_binder_requirements_cover_every_notebook_import(notebook):
    """Every module a notebook imports is the standard library's or comes with binder/requirements.txt."""
    provided = _provided()
    owners = _owners()
    missing = []
    for module in sorted(_notebook_imports(notebook)):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names:
            continue
        if top == "nbflow":
            extra = next((e for m, e in MODULE_EXTRAS.items() if module.startswith(m)), None)
            if extra is not None and extra not in _repo_extras():
                missing.append(f"{module} (needs the {extra!r} extra)")
            continue
        dists = {_canonical(d) for d in owners.get(top, [])}
        if not dists & provided:
            missing.append(f"{module} (from {sorted(dists) or 'no installed distribution'})")
    assert not missing, f"{notebook.name} imports what binder/requirements.txt does not install: {missing}"
