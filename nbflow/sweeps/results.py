"""`ResultTable`: sweep rows gathered column by column, and `to_dataframe` for any map's ``reduce``.

Rows arrive one at a time, from many tasks, in completion order. Held as dicts
they would cost several times the final DataFrame, and one ``pd.concat`` of
chunk frames at the end would briefly need twice its size. So a row is kept as
a tuple until ``chunk`` rows have piled up; then each column of the chunk
becomes a compact `nbflow.sweeps.columns.Piece`, and building the frame joins
one column at a time: the peak stays near the final frame's size. A column's
dtype depends on its values only, never on where the chunks fell (see
`nbflow.sweeps.columns`).

The column namespace belongs to the user first (see `nbflow.sweeps.naming`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from nbflow.core.state import State
from nbflow.errors import summarize_exception
from nbflow.sweeps.columns import Piece, join, piece
from nbflow.sweeps.naming import META_COLUMNS, RUN_FIELDS, STATUSES, column_names, run_column

__all__ = [
    "ResultTable",
    "to_dataframe",
    "RUN_FIELDS",
    "META_COLUMNS",
    "STATUSES",
    "run_column",
    "column_names",
    "table_rows",
]

_TEXT_FIELDS = ("status", "error")


def _text_dtype() -> Any:
    import pandas as pd

    # Fixed, not inferred: an all-None chunk would infer object (showing None) where a mixed one
    # infers str (showing NaN), and the two would not agree across runs.
    return pd.StringDtype(na_value=float("nan"))


def table_rows(frame: Any, axes: list[str]) -> Iterator[dict]:
    """The rows of a sweep's frame as `ResultTable.add` takes them: params, outputs and the run fields.

    Missing values come back as None (a float column's NaN stays NaN), so rows added again
    make the same columns.
    """
    import pandas as pd

    names = frame.attrs.get("nbflow", {}).get("columns") or column_names(axes, [])
    fields = {names[f]: f for f in RUN_FIELDS}
    outputs = {column: output for output, column in names.get("outputs", {}).items()}
    columns = {
        c: (axes.index(c) if c in axes else None, fields.get(c), outputs.get(c, c)) for c in frame.columns
    }
    floats = {c for c, t in frame.dtypes.items() if t == "float64"}
    values = {c: frame[c].tolist() for c in frame.columns}
    for i in range(len(frame)):
        row: dict[str, Any] = {"params": {}, "outputs": {}}
        for column, (axis, field, output) in columns.items():
            value = values[column][i]
            if (
                column not in floats
                and value is not None
                and pd.api.types.is_scalar(value)
                and pd.isna(value)
            ):
                value = None
            if axis is not None:
                row["params"][column] = value
            elif field is not None:
                row[field] = value
            else:
                row["outputs"][output] = value
        if row["status"] not in ("ok", "cached"):
            row["outputs"] = {}  # a failed or cancelled point gave no outputs; its gaps are not values
        yield row


class ResultTable:
    """Rows of a sweep: parameters, outputs, then status, error, attempts, duration_s and task_id.

    Args:
        axes: the parameter columns, first and in this order.
        chunk: how many rows to hold before turning them into columns.
    """

    def __init__(self, axes: Iterable[str], chunk: int = 4096) -> None:
        self.axes = list(axes)
        self.chunk = chunk
        self.outputs: list[Any] = []
        self.counts = dict.fromkeys(STATUSES, 0)
        self._known: set[Any] = set()
        self._rows: list[tuple] = []
        # Per column (axes by name, outputs as ("out", name), fields by name): its pieces so far.
        self._pieces: dict[Any, list[Piece]] = {}
        self._compacted = 0
        self._owner: int | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._compacted + len(self._rows)

    def add(
        self,
        params: Mapping[str, Any],
        outputs: Mapping[Any, Any],
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

    def _chunk_values(self, rows: list[tuple]) -> dict[Any, list]:
        values: dict[Any, list] = {name: [row[0].get(name) for row in rows] for name in self.axes}
        for position, name in enumerate(RUN_FIELDS, start=2):
            values[("run", name)] = [row[position] for row in rows]
        for name in self.outputs:
            values[("out", name)] = [row[1].get(name) for row in rows]
        return values

    def _compact(self) -> None:
        rows = self._rows
        if not rows:
            return
        for key, column in self._chunk_values(rows).items():
            pieces = self._pieces.get(key)
            if pieces is None:
                # A column first seen in this chunk: earlier rows had no value for it.
                pieces = self._pieces[key] = [piece([None] * self._compacted)] if self._compacted else []
            pieces.append(piece(column))
        self._compacted += len(rows)
        self._rows = []

    def frame(self, *, sort: bool = True) -> Any:
        """The rows so far as one DataFrame (in point order when ``sort``); the table stays usable."""
        import pandas as pd

        # Loading export registers the df.nbflow accessor, so every result frame has it.
        import nbflow.sweeps.export  # noqa: F401

        # Before the first add nothing is pending, and a reader must not become the owner.
        owner = self._owner == threading.get_ident()
        with self._lock:
            # Only the adding thread compacts; another thread (a live view) reads a copy of the
            # pending rows instead, so it never swaps the list out from under an add.
            pending = [] if owner else list(self._rows)
            if owner:
                self._compact()
            outputs = list(self.outputs)
            extra = self._chunk_values(pending) if pending else {}
            names = column_names(self.axes, outputs)
            keys = [*self.axes, *(("out", o) for o in outputs), *(("run", f) for f in RUN_FIELDS)]
            columns = {}
            for key in keys:
                pieces = list(self._pieces.get(key) or [])
                if not pieces and self._compacted:
                    pieces.append(piece([None] * self._compacted))
                if key in extra:
                    pieces.append(piece(extra[key]))
                if isinstance(key, tuple) and key[0] == "run":
                    column = _run_field(key[1], pieces)
                    name = names[key[1]]
                elif isinstance(key, tuple):
                    column = join(pieces)
                    name = names["outputs"].get(key[1], key[1])
                else:
                    column = join(pieces)
                    name = key
                columns[name] = column
        combined = pd.DataFrame(columns, copy=False)
        task_id = names["task_id"]
        if sort and len(combined) and not combined[task_id].is_monotonic_increasing:
            combined = combined.sort_values(task_id, kind="stable", ignore_index=True)
        combined.attrs["nbflow"] = {"columns": names}
        return combined


def _run_field(field: str, pieces: list[Piece]) -> Any:
    import numpy as np
    import pandas as pd

    if field in _TEXT_FIELDS:
        values = np.concatenate([p.as_objects() for p in pieces]) if pieces else []
        return pd.Series(values, dtype=_text_dtype())
    column = join(pieces)
    return column if len(column) else pd.Series([], dtype="float64" if field == "duration_s" else "int64")


def to_dataframe(states: Iterable[State]) -> Any:
    """Final sub-states (as a map's ``reduce`` receives them) as a DataFrame, one row per task.

    Every state key becomes a column; tasks that report their origin (the
    `TaskState` objects ``reduce`` receives) add status, error, attempts,
    duration_s and task_id. A state key named like one of those keeps its name
    (see `column_names`).

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
        table.add(
            {},
            values,
            status=status,
            error=summarize_exception(task.error) if task.error is not None else None,
            attempts=task.attempts,
            duration_s=task.duration_s,
            task_id=task.index,
        )
    return table.frame(sort=False)
