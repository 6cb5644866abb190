"""The column namespace of a sweep's frame: the user's names first, the run's own fields aside.

Axes keep their names; an output named like an axis becomes ``<name>_out``; the
run's own fields (`RUN_FIELDS`) keep their plain names unless an axis or output
took them, and then move to ``nbflow_<field>``. ``df.attrs["nbflow"]["columns"]``
records where each went, so `run_column` always finds it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["RUN_FIELDS", "META_COLUMNS", "STATUSES", "column_names", "run_column"]

RUN_FIELDS = ("status", "error", "attempts", "duration_s", "task_id")
# The old name, kept for code that imported it.
META_COLUMNS = RUN_FIELDS
STATUSES = ("ok", "error", "timeout", "cancelled", "cached", "pruned")


def _free(base: str, taken: set) -> str:
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def column_names(axes: Iterable[Any], outputs: Iterable[Any]) -> dict[str, Any]:
    """Where each column goes: ``{"outputs": {output: column}, field: column, ...}`` for every run field.

    Example:
        >>> column_names(["x", "status"], ["x", "error"])["outputs"], column_names(["x", "status"], ["x", "error"])["status"]
        ({'x': 'x_out'}, 'nbflow_status')
    """
    axes = list(axes)
    outputs = list(outputs)
    taken = set(axes) | set(outputs)
    renamed = {}
    for name in outputs:
        if name in axes:
            renamed[name] = _free(f"{name}_out", taken)
            taken.add(renamed[name])
    names: dict[str, Any] = {}
    for field in RUN_FIELDS:
        names[field] = field if field not in taken else _free(f"nbflow_{field}", taken)
        taken.add(names[field])
    names["outputs"] = renamed
    return names


def run_column(frame: Any, field: str) -> Any:
    """The name of run field ``field`` (``"status"``, ``"task_id"``...) in ``frame``, wherever it moved."""
    columns = frame.attrs.get("nbflow", {}).get("columns") if hasattr(frame, "attrs") else None
    return (columns or {}).get(field, field)
