"""The notebook layer: ``%load_ext nbflow``, the ``%%parallel_map`` magic, and a sweep's live table.

Nothing below it imports this package. IPython is imported only by the magic, when
it is loaded, so a sweep's check for a notebook (`nbflow.notebook.live`) costs nothing
in a script.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "ParallelMapMagics"]


def load_ipython_extension(ipython: Any) -> None:
    """Register nbflow's magics with ``ipython`` (what ``%load_ext nbflow`` calls)."""
    from nbflow.notebook.magic import ParallelMapMagics

    ipython.register_magics(ParallelMapMagics)


def __getattr__(name: str) -> Any:
    if name == "ParallelMapMagics":
        from nbflow.notebook.magic import ParallelMapMagics

        return ParallelMapMagics
    msg = f"module 'nbflow.notebook' has no attribute {name!r}"
    raise AttributeError(msg)
