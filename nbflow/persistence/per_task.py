"""`PerTask`: what a sweep keeps per task id beside its frame, in ``df.attrs["nbflow"]``.

pandas deep-copies ``attrs`` on nearly every operation; a `PerTask` hands out itself instead
of a copy (it is only added to while its sweep runs), so slices and copies of a large frame
share one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["PerTask"]


class PerTask(Mapping):
    """A read-only mapping of task id to what that task left; a task that left nothing is absent."""

    def __init__(self, items: dict[int, Any]) -> None:
        self._items = items

    def __getitem__(self, task_id: int) -> Any:
        return self._items[task_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __deepcopy__(self, memo: dict) -> PerTask:
        return self

    def __eq__(self, other: Any) -> bool:
        if type(other) is type(self):
            return self._items == other._items
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]
