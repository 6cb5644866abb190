"""`TaskCurves`: what each point of a sweep reported with `nbflow.report`, kept with its results.

They live in ``df.attrs["nbflow"]["curves"]`` beside the logs, so slices and copies of the frame
keep them (see `PerTask`), and an export stores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nbflow.persistence.per_task import PerTask

__all__ = ["TaskCurves"]


class TaskCurves(PerTask):
    """``(step, {metric: value})`` reports by task id; a task that reported nothing is absent.

    Example:
        >>> curves = TaskCurves({2: [(0, {"loss": 0.9}), (1, {"loss": 0.5})]})
        >>> curves[2][-1]
        (1, {'loss': 0.5})
    """

    def __init__(self, reports: Mapping[int, Any] | None = None) -> None:
        super().__init__(
            {int(k): [(int(step), dict(metrics)) for step, metrics in v] for k, v in (reports or {}).items()}
        )

    def set(self, task_id: int, reports: list[tuple[int, dict[str, Any]]]) -> None:
        """The reports of ``task_id``'s last attempt (replacing any earlier ones)."""
        self._items[task_id] = list(reports)

    def __repr__(self) -> str:
        return f"<TaskCurves: {len(self._items)} task(s) reported>"

    def to_dict(self) -> dict[str, list]:
        """JSON-ready: task ids as strings, each report a ``[step, metrics]`` pair."""
        return {str(k): [[step, metrics] for step, metrics in v] for k, v in sorted(self._items.items())}
