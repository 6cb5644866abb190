"""`TaskLogs`: the text each task of a parallel step left behind, kept with the results it belongs to.

A failed point's log ends with its full traceback (the ``error`` column holds one line).
The logs live in ``df.attrs["nbflow"]["logs"]``, so slices and copies of the frame keep
them; pandas deep-copies ``attrs`` on nearly every operation, so a `TaskLogs` hands out
itself instead of a copy (it is only added to while its sweep runs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["TaskLogs"]


class TaskLogs(Mapping):
    """Log text by task id; a task with nothing logged is absent.

    Example:
        >>> logs = TaskLogs({3: "Traceback (most recent call last): ..."})
        >>> logs.text(3)[:9], logs.text(4)
        ('Traceback', '')
    """

    def __init__(self, texts: Mapping[int, str] | None = None) -> None:
        self._texts: dict[int, str] = {int(k): str(v) for k, v in (texts or {}).items()}

    def add(self, task_id: int, text: str) -> None:
        """Append ``text`` to the log of ``task_id``."""
        if text:
            self._texts[task_id] = self._texts.get(task_id, "") + text

    def text(self, task_id: int) -> str:
        """The log of ``task_id``, or an empty string."""
        return self._texts.get(task_id, "")

    def __getitem__(self, task_id: int) -> str:
        return self._texts[task_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def __deepcopy__(self, memo: dict) -> TaskLogs:
        return self

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, TaskLogs):
            return self._texts == other._texts
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<TaskLogs: {len(self._texts)} task(s) with a log>"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready: task ids as strings."""
        return {str(k): v for k, v in sorted(self._texts.items())}
