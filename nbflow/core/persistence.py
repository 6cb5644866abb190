"""What the engine needs from a persister, and the hook that saves after every step.

The engine knows persisters only through this small protocol; the SQLite and
in-memory implementations live in `nbflow.persistence`. A persister keeps one
record per completed (or failed) step of each application: its position (the
action that ran), its sequence id, its status and the state after it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nbflow.core.hooks import LifecycleHook
from nbflow.core.state import State
from nbflow.errors import PersisterConflictError

__all__ = ["PersistedRecord", "PersisterProtocol", "PersistHook", "check_writer", "UNCHECKED", "load_record"]


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
    """Saves and loads `PersistedRecord` objects.

    ``save`` may take one more keyword, ``after``: the sequence id of the latest step the
    writer knows of (None for none). A persister that takes it refuses, atomically, a save
    when the app id has a later step than that (another writer saved it), raising
    `nbflow.errors.PersisterConflictError`. For one that does not, `PersistHook` checks
    with a `load` before saving.
    """

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


def load_record(persister: Any, partition_key: str | None, app_id: str | None) -> PersistedRecord | None:
    """``persister.load(...)`` as a `PersistedRecord`, whatever the persister returned.

    nbflow's persisters return records; a persister written for Apache Burr returns a dict
    (``PersistedStateData``: partition_key, app_id, sequence_id, position, state, status).
    """
    found = persister.load(partition_key, app_id)
    if found is None or isinstance(found, PersistedRecord):
        return found
    if isinstance(found, Mapping):
        state = found["state"]
        return PersistedRecord(
            found.get("partition_key", partition_key),
            found.get("app_id", app_id),
            found["sequence_id"],
            found["position"],
            found.get("status", "completed"),
            state if isinstance(state, State) else State(state),
        )
    msg = f"{type(persister).__name__}.load() returned {type(found).__name__}; a persister's load returns a PersistedRecord, a dict with partition_key, app_id, sequence_id, position, state and status (Burr's PersistedStateData), or None."
    raise TypeError(msg)


class PersistHook(LifecycleHook):
    """Saves the state after every step: ``completed`` with the new state, ``failed`` with the old one.

    One hook serves one application, and remembers the latest step it saved (or that the
    application was restored from), so that a second live application writing the same
    app id is refused rather than overwriting this one's steps.

    Args:
        persister: where to save.
        after: the sequence id of the saved step the application was restored from, or None.
    """

    def __init__(self, persister: PersisterProtocol, after: int | None = None) -> None:
        self.persister = persister
        self.after = after
        try:
            self._atomic = "after" in inspect.signature(persister.save).parameters
        except (TypeError, ValueError):
            self._atomic = False

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
        record = {
            "partition_key": app.partition_key,
            "app_id": app.app_id,
            "sequence_id": sequence_id,
            "position": action.name,
            "state": state,
            "status": "failed" if exception is not None else "completed",
        }
        if self._atomic:
            self.persister.save(**record, after=self.after)
        else:
            latest = load_record(self.persister, app.partition_key, app.app_id)
            check_writer(app.partition_key, app.app_id, latest.sequence_id if latest else None, self.after)
            self.persister.save(**record)
        self.after = sequence_id if self.after is None else max(self.after, sequence_id)


# `save(after=UNCHECKED)`: save without asking who else wrote (the cache, tests, tools).
UNCHECKED = object()


def check_writer(partition_key: str | None, app_id: str, latest: int | None, after: int | None) -> None:
    """Refuse a save when ``app_id`` has a step (``latest``) later than the writer knows of (``after``)."""
    if latest is None or (after is not None and latest <= after):
        return
    seen = "none of its steps" if after is None else f"step {after}"
    msg = f"Application {app_id!r} (partition key {partition_key!r}) has saved steps up to {latest} that another application wrote, and this one knew {seen}: two live applications with one app id would overwrite each other's steps, so this step was not saved. Resume it instead with .initialize_from(persister).with_identifiers(app_id={app_id!r}), or give this application its own app_id."
    raise PersisterConflictError(msg)


def resume_point(graph: Any, record: PersistedRecord) -> tuple[Any, int]:
    """Where an application restored from ``record`` goes on: ``(next action or None, sequence id)``."""
    if record.status == "failed":
        return graph[record.position], record.sequence_id
    return graph.next_action(record.position, record.state), record.sequence_id + 1
