"""`ResultTable`: sweep rows gathered column by column, and `to_dataframe` for any map's ``reduce``.

Rows arrive one at a time, from many tasks, in completion order. Keeping them as
dicts would cost several times the final DataFrame in memory, so the table
keeps one list per column and, every ``chunk`` rows, turns them into a small
DataFrame. The result is one ``pd.concat`` at the end, sorted into point order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from nbflow.core.state import State

__all__ = ["ResultTable", "to_dataframe", "META_COLUMNS", "STATUSES"]

META_COLUMNS = ("status", "error", "attempts", "duration_s", "task_id")
STATUSES = ("ok", "error", "cancelled", "cached")


class ResultTable:
    """Rows of a sweep: parameters, outputs, then status, error, attempts, duration_s and task_id.

    Args:
        axes: the parameter columns, first and in this order.
        chunk: how many rows to hold as Python lists before compacting them into a DataFrame.
    """

    def __init__(self, axes: Iterable[str], chunk: int = 4096) -> None:
        self.axes = list(axes)
        self.chunk = chunk
        self.outputs: list[str] = []
        self.counts = dict.fromkeys(STATUSES, 0)
        self._columns: dict[str, list] = {name: [] for name in (*self.axes, *META_COLUMNS)}
        self._frames: list[Any] = []
        self._pending = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(f) for f in self._frames) + self._pending

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
        """Add one row."""
        with self._lock:
            columns = self._columns
            for name in outputs:
                if name not in columns:
                    # A column first seen now: earlier rows of this chunk had no value for it.
                    self.outputs.append(name)
                    columns[name] = [None] * self._pending
            for name in self.axes:
                columns[name].append(params.get(name))
            for name in self.outputs:
                columns[name].append(outputs.get(name))
            columns["status"].append(status)
            columns["error"].append(error)
            columns["attempts"].append(attempts)
            columns["duration_s"].append(duration_s)
            columns["task_id"].append(task_id)
            self.counts[status] += 1
            self._pending += 1
            if self._pending >= self.chunk:
                self._compact()

    def _compact(self) -> None:
        import pandas as pd

        if self._pending:
            order = [*self.axes, *self.outputs, *META_COLUMNS]
            frame = pd.DataFrame({name: self._columns[name] for name in order}, columns=order)
            # Fixed text dtypes: inferred ones depend on which values a chunk happens to hold
            # (all-None errors infer object and show None; mixed ones str and show NaN).
            text = pd.StringDtype(na_value=float("nan"))
            frame["status"] = frame["status"].astype(text)
            frame["error"] = frame["error"].astype(text)
            self._frames.append(frame)
        self._columns = {name: [] for name in self._columns}
        self._pending = 0

    def frame(self, *, sort: bool = True) -> Any:
        """The rows so far as one DataFrame (in point order when ``sort``); the table stays usable."""
        import pandas as pd

        # Loading export registers the df.nbflow accessor, so every result frame has it.
        from nbflow.sweeps import export  # noqa: F401

        with self._lock:
            self._compact()
            order = [*self.axes, *self.outputs, *META_COLUMNS]
            if not self._frames:
                empty = pd.DataFrame({name: [] for name in order}, columns=order)
                return empty.astype(
                    {
                        "status": pd.StringDtype(na_value=float("nan")),
                        "error": pd.StringDtype(na_value=float("nan")),
                    }
                )
            frames = [f.reindex(columns=order) if list(f.columns) != order else f for f in self._frames]
            # Keep the compacted result: the next call (a live refresh) starts from one frame.
            combined = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            self._frames = [combined]
        if sort and not combined["task_id"].is_monotonic_increasing:
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
