"""What the upper layers lend the lower ones: drawings, live views in a notebook.

The core and the sweeps never import viz, widgets or the notebook layer. Where they
offer a feature that lives up there (``app.visualize()``, ``run(display=True)``, a
sweep's live table), they ask this registry for it by name, and the package's top
(``nbflow/__init__.py``) registers where each one is, to be imported on first use.

Example:
    >>> provide("answer", lambda: (lambda: 42))
    >>> use("answer")()
    42
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["provide", "use"]

_LOADERS: dict[str, Callable[[], Any]] = {}
_LOADED: dict[str, Any] = {}


def provide(name: str, loader: Callable[[], Any]) -> None:
    """Make ``name`` available: ``loader()`` imports and returns it the first time it is used."""
    _LOADERS[name] = loader
    _LOADED.pop(name, None)


def use(name: str) -> Any:
    """The implementation registered as ``name``.

    Raises:
        LookupError: nothing registered it (nbflow's top package does, on import).
    """
    found = _LOADED.get(name)
    if found is None:
        loader = _LOADERS.get(name)
        if loader is None:
            msg = f"No {name!r} is registered: nbflow's package registers it when imported. Import nbflow (import nbflow) before using it."
            raise LookupError(msg)
        found = _LOADED[name] = loader()
    return found
