"""Deprecated: moved to `nbflow.notebook.live` (the live table) and `nbflow.sweeps.progress`.

Kept for one release so that imports of the old path go on working, with a warning.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = {
    "in_notebook": "nbflow.notebook.live",
    "LiveTable": "nbflow.notebook.live",
    "make_progress": "nbflow.sweeps.progress",
}


def __getattr__(name: str) -> Any:
    home = _MOVED.get(name)
    if home is None:
        msg = f"module 'nbflow.sweeps.live' has no attribute {name!r}"
        raise AttributeError(msg)
    warnings.warn(
        f"nbflow.sweeps.live.{name} moved to {home}.{name}; import it from there (the old path goes in the next release).",
        DeprecationWarning,
        stacklevel=2,
    )
    # A deprecated re-export, allowed upward for one release (see tests/test_architecture.py).
    return getattr(importlib.import_module(home), name)
