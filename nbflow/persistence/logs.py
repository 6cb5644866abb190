"""`TaskLogs`: the text each task of a parallel step left behind, kept with the results it belongs to.

A failed point's log ends with its full traceback (the ``error`` column holds one line).
The logs live in ``df.attrs["nbflow"]["logs"]``, so slices and copies of the frame keep
them (see `PerTask`).
"""

from __future__ import annotations

from collections.abc import Mapping

from nbflow.persistence.per_task import PerTask

__all__ = ["TaskLogs"]


class TaskLogs(PerTask):
    """Log text by task id; a task with nothing logged is absent.

    Example:
        >>> logs = TaskLogs({3: "Traceback (most recent call last): ..."})
        >>> logs.text(3)[:9], logs.text(4)
        ('Traceback', '')
    """

    def __init__(self, texts: Mapping[int, str] | None = None) -> None:
        super().__init__({int(k): str(v) for k, v in (texts or {}).items()})

    def add(self, task_id: int, text: str) -> None:
        """Append ``text`` to the log of ``task_id``."""
        if text:
            self._items[task_id] = self._items.get(task_id, "") + text

    def text(self, task_id: int) -> str:
        """The log of ``task_id``, or an empty string."""
        return self._items.get(task_id, "")

    def __repr__(self) -> str:
        return f"<TaskLogs: {len(self._items)} task(s) with a log>"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready: task ids as strings."""
        return {str(k): v for k, v in sorted(self._items.items())}
