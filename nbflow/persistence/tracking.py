"""`LocalTracker`: every step of every application recorded in a SQLite file, no server needed.

One row per step: the action, start and end times, inputs, the keys written
with their new values, the keys deleted, and the exception if it failed; plus
one row per application with its parent (so sub-applications link to the step
that started them) and its starting state. `history` reads the steps back as a
DataFrame and `state_at` rebuilds the state after any step.

Recording must not slow the work it watches: rows are buffered in memory and
written in one transaction when a top-level run ends (or every
``flush_every`` rows, and at the end of each task in a worker process).
Values JSON cannot hold are recorded as their ``repr`` rather than failing the run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from nbflow.core.hooks import LifecycleHook
from nbflow.core.state import State
from nbflow.errors import NotRecordedError, exception_text
from nbflow.persistence.serde import from_json, to_json
from nbflow.persistence.sqlite_file import SQLiteFile

__all__ = ["LocalTracker", "history", "state_at"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (
    app_id TEXT PRIMARY KEY,
    partition_key TEXT,
    parent_app_id TEXT,
    parent_sequence_id INTEGER,
    first_sequence_id INTEGER NOT NULL,
    initial_state TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
    app_id TEXT NOT NULL,
    sequence_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL NOT NULL,
    inputs TEXT NOT NULL,
    written TEXT NOT NULL,
    deleted TEXT NOT NULL,
    exception TEXT,
    PRIMARY KEY (app_id, sequence_id)
);
CREATE INDEX IF NOT EXISTS apps_parent ON apps (parent_app_id);
"""


_PLAIN = (str, int, float, bool, type(None))
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _json(values: dict) -> str:
    """``values`` as JSON text, each value on its own so that one odd value costs only itself."""
    if not values:
        return "{}"
    if all(type(v) in _PLAIN for v in values.values()):
        return _ENCODE(values)
    portable = {}
    for key, value in values.items():
        if type(value) in _PLAIN:  # most step values: skip the serde's type dispatch
            portable[key] = value
            continue
        try:
            portable[key] = to_json(value)
        except Exception:
            # Tracking observes; it must never fail the run it watches.
            portable[key] = {"__repr__": repr(value)[:2000]}
    return _ENCODE(portable)


class LocalTracker(LifecycleHook):
    """Records every step of an application, and of its sub-applications, to a local SQLite file.

    Args:
        project: a name for the file (``<storage_dir>/<project>.db``).
        storage_dir: where to keep it; ``~/.nbflow/tracking`` by default.
        flush_every: write buffered rows once this many have piled up.

    Example:
        >>> import tempfile
        >>> tracker = LocalTracker("demo", storage_dir=tempfile.mkdtemp())
        >>> tracker.path.name
        'demo.db'
    """

    def __init__(
        self, project: str, storage_dir: str | os.PathLike | None = None, *, flush_every: int = 2000
    ):
        if not project or any(c in project for c in "/\\\0"):
            msg = f"LocalTracker(project={project!r}) needs a plain name (it becomes a file name), e.g. 'sweeps'."
            raise ValueError(msg)
        base = Path(storage_dir) if storage_dir is not None else Path.home() / ".nbflow" / "tracking"
        self.project = project
        self.path = base / f"{project}.db"
        self.flush_every = flush_every
        self._setup()

    def _setup(self) -> None:
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._apps: list[tuple] = []
        self._steps: list[tuple] = []
        self._starts: dict[tuple[str, int], float] = {}
        self._known_apps: set[str] = set()
        self._pid = os.getpid()
        self._file = SQLiteFile(self.path, _SCHEMA, owner="LocalTracker")

    def __getstate__(self) -> dict:
        return {"project": self.project, "path": self.path, "flush_every": self.flush_every}

    def __setstate__(self, values: dict) -> None:
        self.__dict__.update(values)
        self._setup()

    def __repr__(self) -> str:
        return f"LocalTracker({self.project!r}, storage_dir={str(self.path.parent)!r})"

    # -- recording ----------------------------------------------------------------------------

    def _register(self, app: Any, first_sequence_id: int) -> None:
        parent = app.parent
        row = (
            app.app_id,
            app.partition_key,
            parent.app_id if parent else None,
            parent.sequence_id if parent else None,
            first_sequence_id,
            app.state,
            time.time(),
        )
        with self._lock:
            self._known_apps.add(app.app_id)
            self._apps.append(row)

    def pre_step(self, *, app: Any, sequence_id: int, inputs: dict, **kwargs: Any) -> None:
        if app.app_id not in self._known_apps:
            self._register(app, sequence_id)
        self._starts[(app.app_id, sequence_id)] = (time.time(), inputs)

    def post_step(
        self,
        *,
        app: Any,
        action: Any,
        sequence_id: int,
        exception: BaseException | None,
        written: dict,
        deleted: list,
        **kwargs: Any,
    ) -> None:
        ended = time.time()
        started, inputs = self._starts.pop((app.app_id, sequence_id), (ended, {}))
        # The one-line summary, and after a NUL the traceback: one column, readable by older nbflow.
        # A NUL in the message itself would split it in the wrong place; a failing __str__ must not
        # fail the step's hook.
        error = (
            f"{type(exception).__name__}: {exception_text(exception).replace(chr(0), '')}\0"
            + "".join(traceback.format_exception(exception))
            if exception is not None
            else None
        )
        row = (app.app_id, sequence_id, action.name, started, ended, inputs, written, deleted, error)
        with self._lock:
            self._steps.append(row)
            full = len(self._steps) >= self.flush_every
        if full:
            self.flush()

    def post_run(self, *, app: Any, **kwargs: Any) -> None:
        # Top-level runs flush; so does every run in a worker process, whose buffer would
        # otherwise die with the worker.
        if app.parent is None or os.getpid() != self._pid:
            self.flush()

    # -- writing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered row now."""
        with self._lock:
            apps, self._apps = self._apps, []
            steps, self._steps = self._steps, []
        if not apps and not steps:
            return
        # Serialize outside the buffer lock, so that steps finishing meanwhile never wait on it.
        app_rows = [
            (a, pk, p, ps, first, _json(state.get_all()), t) for a, pk, p, ps, first, state, t in apps
        ]
        step_rows = [
            (a, seq, name, t0, t1, _json(inputs), _json(written), json.dumps(list(deleted)), err)
            for a, seq, name, t0, t1, inputs, written, deleted, err in steps
        ]
        with self._write_lock:
            conn = self._file.connection()
            try:
                conn.execute("BEGIN")
                conn.executemany("INSERT OR IGNORE INTO apps VALUES (?, ?, ?, ?, ?, ?, ?)", app_rows)
                conn.executemany("INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", step_rows)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self._file.fail(exc, "write to") from None

    # -- reading ------------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        self.flush()
        with self._write_lock:
            try:
                return self._file.connection().execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._file.fail(exc, "read") from None

    def app_ids(self, parent_app_id: str | None = None) -> list[str]:
        """Tracked application ids, oldest first; with ``parent_app_id``, only its sub-applications."""
        if parent_app_id is None:
            return [
                r[0]
                for r in self._query(
                    "SELECT app_id FROM apps WHERE parent_app_id IS NULL ORDER BY created_at"
                )
            ]
        return [
            r[0]
            for r in self._query(
                "SELECT app_id FROM apps WHERE parent_app_id = ? ORDER BY created_at", (parent_app_id,)
            )
        ]

    def steps(self, app_id: str) -> list[dict]:
        """The recorded steps of ``app_id``, in order, as dicts."""
        rows = self._query("SELECT * FROM steps WHERE app_id = ? ORDER BY sequence_id", (app_id,))
        return [
            {
                "app_id": a,
                "sequence_id": seq,
                "action": name,
                "started_at": t0,
                "ended_at": t1,
                "duration_s": t1 - t0,
                "inputs": _load(inputs),
                "written": _load(written),
                "deleted": json.loads(deleted),
                "exception": err.partition("\0")[0] if err is not None else None,
                "traceback": err.partition("\0")[2] or err if err is not None else None,
            }
            for a, seq, name, t0, t1, inputs, written, deleted, err in rows
        ]

    def children(self, parent_app_id: str) -> list[dict]:
        """The sub-applications of ``parent_app_id``, oldest first: each one's id, the parent's step
        that started it, its starting state, its first action (None before its first step is
        recorded) and whether a step of it raised.
        """
        rows = self._query(
            """SELECT a.app_id, a.parent_sequence_id, a.initial_state,
                   (SELECT action FROM steps s WHERE s.app_id = a.app_id ORDER BY sequence_id LIMIT 1),
                   EXISTS (SELECT 1 FROM steps s WHERE s.app_id = a.app_id AND s.exception IS NOT NULL)
               FROM apps a WHERE parent_app_id = ? ORDER BY created_at""",
            (parent_app_id,),
        )
        return [
            {
                "app_id": a,
                "parent_sequence_id": step,
                "initial_state": _load(initial),
                "action": action,
                "failed": bool(failed),
            }
            for a, step, initial, action, failed in rows
        ]

    def app(self, app_id: str) -> dict:
        """What was recorded about ``app_id`` itself: its parent and starting state."""
        rows = self._query("SELECT * FROM apps WHERE app_id = ?", (app_id,))
        if not rows:
            known = self.app_ids()
            msg = f"LocalTracker {self.project!r} has no application {app_id!r}. Top-level applications tracked: {known[-10:]}."
            raise NotRecordedError(msg)
        a, pk, parent, parent_seq, first, initial, created = rows[0]
        return {
            "app_id": a,
            "partition_key": pk,
            "parent_app_id": parent,
            "parent_sequence_id": parent_seq,
            "first_sequence_id": first,
            "initial_state": _load(initial),
            "created_at": created,
        }


def _load(text: str) -> dict:
    return {
        k: v if isinstance(v, dict) and "__repr__" in v else from_json(v) for k, v in json.loads(text).items()
    }


def history(app_id: str, tracker: LocalTracker, *, include_children: bool = False) -> Any:
    """The steps of ``app_id`` as a pandas DataFrame, one row per step.

    Args:
        app_id: the application to look at.
        tracker: the `LocalTracker` that recorded it.
        include_children: also list the steps of its sub-applications (recursively).
    """
    import pandas as pd

    app_ids = [app_id]
    if include_children:
        frontier = [app_id]
        while frontier:
            children = [c for parent in frontier for c in tracker.app_ids(parent)]
            app_ids.extend(children)
            frontier = children
    rows = [step for a in app_ids for step in tracker.steps(a)]
    columns = [
        "app_id",
        "sequence_id",
        "action",
        "started_at",
        "ended_at",
        "duration_s",
        "inputs",
        "written",
        "deleted",
        "exception",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("started_at", "ended_at"):
        frame[column] = pd.to_datetime(frame[column], unit="s")
    return frame


def state_at(app_id: str, sequence_id: int, tracker: LocalTracker) -> State:
    """The state of ``app_id`` right after step ``sequence_id``, rebuilt from what the tracker recorded.

    Raises:
        NotRecordedError: the application or the step was not recorded (a KeyError).
    """
    info = tracker.app(app_id)
    state = State(info["initial_state"])
    steps = [s for s in tracker.steps(app_id) if s["sequence_id"] <= sequence_id]
    if not steps or steps[-1]["sequence_id"] != sequence_id:
        recorded = [s["sequence_id"] for s in tracker.steps(app_id)]
        msg = f"Application {app_id!r} has no recorded step {sequence_id}. Recorded steps: {recorded[:20]}."
        raise NotRecordedError(msg)
    for step in steps:
        if step["exception"] is None:
            state = state.update(**step["written"]).wipe(delete=step["deleted"])
    return state
