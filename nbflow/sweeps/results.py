"""`ResultTable`: sweep rows gathered column by column, and `to_dataframe` for any map's ``reduce``.

Rows arrive one at a time, from many tasks, in completion order. Held as dicts
they would cost several times the final DataFrame, and one ``pd.concat`` of
chunk frames at the end would briefly need twice its size. So a row is kept as
a tuple until ``chunk`` rows have piled up; then each column of the chunk
becomes a pandas Series, and building the frame joins one column at a time,
dropping its pieces as it goes: the peak stays near the final frame's size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from nbflow.core.state import State

__all__ = ["ResultTable", "to_dataframe", "META_COLUMNS", "STATUSES"]

META_COLUMNS = ("status", "error", "attempts", "duration_s", "task_id")
STATUSES = ("ok", "error", "cancelled", "cached")
_TEXT_COLUMNS = ("status", "error")


def _text_dtype() -> Any:
    import pandas as pd

    # Fixed, not inferred: an all-None chunk would infer object (showing None) where a mixed one
    # infers str (showing NaN), and the two would not agree across runs.
    return pd.StringDtype(na_value=float("nan"))


def _column(values: list, text: bool) -> Any:
    import numpy as np
    import pandas as pd

    if text:
        return pd.Series(values, dtype=_text_dtype())
    # numpy reads a tuple of plain numbers several times faster than pandas' inference does;
    # anything else (text, None, objects) goes through pandas, which knows what to make of it.
    array = np.asarray(values) if values and type(values[0]) in (int, float, bool) else None
    if array is not None and array.dtype.kind in "iufb":
        return pd.Series(array, copy=False)
    return pd.Series(values)


class ResultTable:
    """Rows of a sweep: parameters, outputs, then status, error, attempts, duration_s and task_id.

    Args:
        axes: the parameter columns, first and in this order.
        chunk: how many rows to hold before turning them into columns.
    """

    def __init__(self, axes: Iterable[str], chunk: int = 4096) -> None:
        self.axes = list(axes)
        self.chunk = chunk
        self.outputs: list[str] = []
        self.counts = dict.fromkeys(STATUSES, 0)
        self._known: set[str] = set()
        self._rows: list[tuple] = []
        self._columns: dict[str, list[Any]] = {}
        self._compacted = 0
        self._owner: int | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._compacted + len(self._rows)

    def add(
        self,
        params: Mapping[str, Any],
        outputs: Mapping[str, Any],
        *,
        status: str,
        error: str | None = None,
        attempts: int = 0,
        duration_s: float = 0.0,
        task_id: int = -1,
    ) -> None:
        """Add one row (from one thread: the one that reduces; others may read `frame` meanwhile)."""
        if self._owner is None:
            self._owner = threading.get_ident()
        if outputs.keys() != self._known:
            with self._lock:
                for name in outputs:
                    if name not in self._known:
                        self._known.add(name)
                        self.outputs.append(name)
        # Just keep the row, without a lock (a list append is atomic): compaction turns a whole
        # chunk into columns far faster than a row at a time, and readers only copy the list.
        self._rows.append((params, outputs, status, error, attempts, duration_s, task_id))
        self.counts[status] += 1
        if len(self._rows) >= self.chunk:
            with self._lock:
                self._compact()

    def _chunk_columns(self, rows: list[tuple]) -> dict[str, list]:
        values: dict[str, list] = {name: [row[0].get(name) for row in rows] for name in self.axes}
        for position, name in enumerate(META_COLUMNS, start=2):
            values[name] = [row[position] for row in rows]
        for name in self.outputs:
            values[name] = [row[1].get(name) for row in rows]
        return values

    def _compact(self) -> None:
        import pandas as pd

        rows = self._rows
        if not rows:
            return
        for name, column in self._chunk_columns(rows).items():
            pieces = self._columns.get(name)
            if pieces is None:
                # A column first seen in this chunk: earlier rows had no value for it.
                pieces = self._columns[name] = (
                    [pd.Series([None] * self._compacted, dtype=object)] if self._compacted else []
                )
            pieces.append(_column(column, text=name in _TEXT_COLUMNS))
        self._compacted += len(rows)
        self._rows = []

    def frame(self, *, sort: bool = True) -> Any:
        """The rows so far as one DataFrame (in point order when ``sort``); the table stays usable."""
        import pandas as pd

        # Loading export registers the df.nbflow accessor, so every result frame has it.
        from nbflow.sweeps import export  # noqa: F401

        owner = self._owner in (None, threading.get_ident())
        with self._lock:
            # Only the adding thread compacts; another thread (a live view) reads a copy of the
            # pending rows instead, so it never swaps the list out from under an add.
            pending = [] if owner else list(self._rows)
            if owner:
                self._compact()
            order = [*self.axes, *self.outputs, *META_COLUMNS]
            extra = self._chunk_columns(pending) if pending else {}
            columns = {}
            for name in order:
                pieces = self._columns.get(name) or []
                if len(pieces) > 1:
                    # Join one column at a time and keep only the joined one: the pieces go now.
                    pieces[:] = [pd.concat(pieces, ignore_index=True)]
                parts = [*pieces]
                if name in extra:
                    if not parts and self._compacted:
                        parts.append(pd.Series([None] * self._compacted, dtype=object))
                    parts.append(_column(extra[name], text=name in _TEXT_COLUMNS))
                if not parts:
                    columns[name] = pd.Series([], dtype=_text_dtype() if name in _TEXT_COLUMNS else object)
                else:
                    columns[name] = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        combined = pd.DataFrame(columns, columns=order, copy=False)
        if sort and len(combined) and not combined["task_id"].is_monotonic_increasing:
            combined = combined.sort_values("task_id", kind="stable", ignore_index=True)
        return combined


def to_dataframe(states: Iterable[State]) -> Any:
    """Final sub-states (as a map's ``reduce`` receives them) as a DataFrame, one row per task.

    Every state key becomes a column; tasks that report their origin (the
    `TaskState` objects ``reduce`` receives) add status, error, attempts,
    duration_s and task_id.

    Example:
        >>> from nbflow import State
        >>> to_dataframe([State(x=1, y=2), State(x=3, y=4)])[["x", "y"]].values.tolist()
        [[1, 2], [3, 4]]
    """
    table = ResultTable([])
    for state in states:
        task = getattr(state, "task", None)
        values = state.get_all()
        if task is None:
            table.add({}, values, status="ok")
            continue
        status = "error" if task.error is not None else "cached" if task.cached else "ok"
        error = f"{type(task.error).__name__}: {task.error}" if task.error is not None else None
        table.add(
            {},
            values,
            status=status,
            error=error,
            attempts=task.attempts,
            duration_s=task.duration_s,
            task_id=task.index,
        )
    return table.frame(sort=False)
