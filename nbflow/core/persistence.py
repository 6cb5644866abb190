"""What the engine needs from a persister, and the hook that saves after every step.

The engine knows persisters only through this small protocol; the SQLite and
in-memory implementations live in `nbflow.persistence`. A persister keeps one
record per completed (or failed) step of each application: its position (the
action that ran), its sequence id, its status and the state after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nbflow.core.hooks import LifecycleHook
from nbflow.core.state import State

__all__ = ["PersistedRecord", "PersisterProtocol", "PersistHook"]


@dataclass(frozen=True)
class PersistedRecord:
    """One saved step of one application."""

    partition_key: str | None
    app_id: str
    sequence_id: int
    position: str
    status: str
    state: State


@runtime_checkable
class PersisterProtocol(Protocol):
    """Saves and loads `PersistedRecord` objects."""

    def save(
        self,
        *,
        partition_key: str | None,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: str,
    ) -> None: ...

    def load(self, partition_key: str | None, app_id: str | None) -> PersistedRecord | None: ...

    def list_app_ids(self, partition_key: str | None = None) -> list[str]: ...


class PersistHook(LifecycleHook):
    """Saves the state after every step: ``completed`` with the new state, ``failed`` with the old one."""

    def __init__(self, persister: PersisterProtocol) -> None:
        self.persister = persister

    def post_step(
        self,
        *,
        app: Any,
        action: Any,
        state: State,
        exception: BaseException | None,
        sequence_id: int,
        **kwargs: Any,
    ) -> None:
        # A KeyboardInterrupt is not the action's failure: leave the last completed step as the record.
        if exception is not None and not isinstance(exception, Exception):
            return
        self.persister.save(
            partition_key=app.partition_key,
            app_id=app.app_id,
            sequence_id=sequence_id,
            position=action.name,
            state=state,
            status="failed" if exception is not None else "completed",
        )


def resume_point(graph: Any, record: PersistedRecord) -> tuple[Any, int]:
    """Where an application restored from ``record`` goes on: ``(next action or None, sequence id)``."""
    if record.status == "failed":
        return graph[record.position], record.sequence_id
    return graph.next_action(record.position, record.state), record.sequence_id + 1
