"""`nbflow.config` (this module is `nbflow.settings`): session-wide defaults that every sweep reads when it starts.

Stdlib only, so every layer may read it. Each sweep also takes the same options as
keyword arguments (``record=``, ``store=``), which win over these.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["config", "current", "run_store_path"]

_UNSET: Any = object()
_SETTINGS: dict[str, Any] = {"record": True, "store": None}


class _Previous:
    """What `config` replaced; ``with nbflow.config(...):`` puts it back on leaving the block."""

    def __init__(self, previous: dict[str, Any]) -> None:
        self.previous = previous

    def __enter__(self) -> _Previous:
        return self

    def __exit__(self, *exc: Any) -> None:
        _SETTINGS.update(self.previous)

    def __repr__(self) -> str:
        return f"nbflow.config({', '.join(f'{k}={v!r}' for k, v in current().items())})"


def config(*, record: bool = _UNSET, store: str | os.PathLike | None = _UNSET) -> _Previous:
    """Set nbflow's defaults for this session, or, used with ``with``, for a block.

    Args:
        record: record every sweep in the run store (True by default); False turns
            recording off for every sweep that does not say ``record=True`` itself.
        store: the run store's folder; None means ``$NBFLOW_HOME/runs``, or
            ``.nbflow/runs`` under the current directory when ``NBFLOW_HOME`` is unset.

    Example:
        >>> import nbflow
        >>> with nbflow.config(record=False):
        ...     nbflow.config.current()["record"]
        False
        >>> nbflow.config.current()["record"]
        True
    """
    given = {"record": record, "store": store}
    changed = {k: v for k, v in given.items() if v is not _UNSET}
    if "record" in changed and not isinstance(changed["record"], bool):
        msg = f"nbflow.config(record=...) takes True or False; got {changed['record']!r}."
        raise TypeError(msg)
    if changed.get("store") is not None and not isinstance(changed["store"], (str, os.PathLike)):
        msg = f"nbflow.config(store=...) takes a folder (a str or a path), or None for the default; got {type(changed['store']).__name__}."
        raise TypeError(msg)
    previous = {k: _SETTINGS[k] for k in changed}
    _SETTINGS.update(changed)
    return _Previous(previous)


def current() -> dict[str, Any]:
    """The settings in force: ``{"record": ..., "store": ...}``."""
    return dict(_SETTINGS)


config.current = current  # type: ignore[attr-defined]


def run_store_path(store: str | os.PathLike | None = None) -> Path:
    """The run store's folder: ``store``, else the configured one, else ``$NBFLOW_HOME/runs``, else ``./.nbflow/runs``."""
    chosen = store if store is not None else _SETTINGS["store"]
    if chosen is not None:
        return Path(os.fspath(chosen)).expanduser()
    home = os.environ.get("NBFLOW_HOME")
    return (Path(home).expanduser() if home else Path.cwd() / ".nbflow") / "runs"
