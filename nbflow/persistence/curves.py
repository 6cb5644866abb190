"""`TaskCurves`: what each point of a sweep reported with `nbflow.report`, kept with its results.

They live in ``df.attrs["nbflow"]["curves"]`` beside the logs, so slices and copies of the frame
keep them, and an export stores them. Like `TaskLogs`, a `TaskCurves` hands out itself when
pandas deep-copies ``attrs`` (it is only added to while its sweep runs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["TaskCurves"]


class TaskCurves(Mapping):
    """``(step, {metric: value})`` reports by task id; a task that reported nothing is absent.

    Example:
        >>> curves = TaskCurves({2: [(0, {"loss": 0.9}), (1, {"loss": 0.5})]})
        >>> curves[2][-1]
        (1, {'loss': 0.5})
    """

    def __init__(self, reports: Mapping[int, Any] | None = None) -> None:
        self._reports: dict[int, list[tuple[int, dict[str, Any]]]] = {
            int(k): [(int(step), dict(metrics)) for step, metrics in v] for k, v in (reports or {}).items()
        }

    def set(self, task_id: int, reports: list[tuple[int, dict[str, Any]]]) -> None:
        """The reports of ``task_id``'s last attempt (replacing any earlier ones)."""
        self._reports[task_id] = list(reports)

    def __getitem__(self, task_id: int) -> list[tuple[int, dict[str, Any]]]:
        return self._reports[task_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._reports)

    def __len__(self) -> int:
        return len(self._reports)

    def __deepcopy__(self, memo: dict) -> TaskCurves:
        return self

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, TaskCurves):
            return self._reports == other._reports
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<TaskCurves: {len(self._reports)} task(s) reported>"

    def to_dict(self) -> dict[str, list]:
        """JSON-ready: task ids as strings, each report a ``[step, metrics]`` pair."""
        return {str(k): [[step, metrics] for step, metrics in v] for k, v in sorted(self._reports.items())}
