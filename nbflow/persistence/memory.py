"""`InMemoryPersister`: saved steps in a dict, for tests and for resuming within one kernel."""

from __future__ import annotations

import threading
import time
from typing import Any

from nbflow.core.persistence import UNCHECKED, PersistedRecord, check_writer
from nbflow.core.state import State

__all__ = ["InMemoryPersister"]


class InMemoryPersister:
    """Keeps every saved step in memory.

    It pickles with its records, so it can be sent to worker processes, but what
    they save stays in their copy: use `SQLitePersister` to resume work done in
    processes.

    Example:
        >>> p = InMemoryPersister()
        >>> p.save(partition_key=None, app_id="a", sequence_id=0, position="start", state=State(x=1), status="completed")
        >>> p.load(None, "a").position
        'start'
    """

    def __init__(self) -> None:
        self._steps: dict[tuple[str, str], dict[int, tuple[PersistedRecord, float]]] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        with self._lock:
            return {"_steps": {k: dict(v) for k, v in self._steps.items()}}

    def __setstate__(self, values: dict) -> None:
        self._steps = values["_steps"]
        self._lock = threading.Lock()

    def save(
        self,
        *,
        partition_key: str | None,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: str,
        after: Any = UNCHECKED,
    ) -> None:
        """Save one step; saving the same step again replaces it.

        Raises:
            PersisterConflictError: ``after`` is given and the app id has a later step than it.
        """
        record = PersistedRecord(partition_key, app_id, sequence_id, position, status, state)
        with self._lock:
            steps = self._steps.get((partition_key or "", app_id))
            if after is not UNCHECKED:
                check_writer(partition_key, app_id, max(steps) if steps else None, after)
            self._steps.setdefault((partition_key or "", app_id), {})[sequence_id] = (
                record,
                time.monotonic(),
            )

    def load(self, partition_key: str | None, app_id: str | None) -> PersistedRecord | None:
        """The latest step of ``app_id`` (or of the partition's latest application), or None."""
        with self._lock:
            if app_id is None:
                candidates = [
                    rec
                    for (pk, _), steps in self._steps.items()
                    if pk == (partition_key or "")
                    for rec in steps.values()
                ]
                return max(candidates, key=lambda r: (r[1], r[0].sequence_id))[0] if candidates else None
            steps = self._steps.get((partition_key or "", app_id))
            return steps[max(steps)][0] if steps else None

    def history(self, partition_key: str | None, app_id: str) -> list[PersistedRecord]:
        """Every saved step of ``app_id``, oldest first."""
        with self._lock:
            steps = self._steps.get((partition_key or "", app_id), {})
            return [steps[i][0] for i in sorted(steps)]

    def list_app_ids(self, partition_key: str | None = None) -> list[str]:
        """The app ids saved under ``partition_key``, most recently saved first."""
        with self._lock:
            latest = {
                app: max(t for _, t in steps.values())
                for (pk, app), steps in self._steps.items()
                if pk == (partition_key or "")
            }
        return sorted(latest, key=latest.get, reverse=True)

    def clear(self, partition_key: str | None = None) -> int:
        """Delete every saved step of ``partition_key``; returns how many there were."""
        with self._lock:
            gone = [k for k in self._steps if k[0] == (partition_key or "")]
            return sum(len(self._steps.pop(k)) for k in gone)

    def count(self) -> int:
        """How many steps are saved, across all applications."""
        with self._lock:
            return sum(len(steps) for steps in self._steps.values())
