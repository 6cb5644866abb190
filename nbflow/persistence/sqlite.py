"""`SQLitePersister`: the embedded default, one SQLite file holding every saved step.

Each save is one transaction, so a killed kernel loses nothing saved; with WAL
journaling a parallel map on processes saves from every worker at once (see
`nbflow.persistence.sqlite_file`).
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from nbflow.core.persistence import UNCHECKED, PersistedRecord, check_writer
from nbflow.core.state import State
from nbflow.errors import PersistenceError, SerializationError
from nbflow.persistence.serde import dumps, loads
from nbflow.persistence.sqlite_file import SQLiteFile

__all__ = ["SQLitePersister"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nbflow_steps (
    partition_key TEXT NOT NULL,
    app_id TEXT NOT NULL,
    sequence_id INTEGER NOT NULL,
    position TEXT NOT NULL,
    status TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (partition_key, app_id, sequence_id)
);
CREATE INDEX IF NOT EXISTS nbflow_steps_latest ON nbflow_steps (partition_key, created_at);
"""


class SQLitePersister:
    """Saves each step of each application to a SQLite file.

    Args:
        path: the database file; created (owner-only permissions) if missing.
        allow_pickle: store values JSON cannot hold as pickles, and load them back.
            Off by default, because unpickling a shared file runs its code.
        busy_timeout_s: how long a writer waits for another to finish.

    Example:
        >>> import tempfile, pathlib
        >>> p = SQLitePersister(pathlib.Path(tempfile.mkdtemp()) / "runs.db")
        >>> p.save(partition_key=None, app_id="a", sequence_id=0, position="start", state=State(x=1), status="completed")
        >>> p.load(None, "a").state["x"]
        1
    """

    def __init__(self, path: str | os.PathLike, *, allow_pickle: bool = False, busy_timeout_s: float = 30.0):
        self.file = SQLiteFile(path, _SCHEMA, owner="SQLitePersister", busy_timeout_s=busy_timeout_s)
        self.path = self.file.path
        self.allow_pickle = allow_pickle
        self.busy_timeout_s = busy_timeout_s

    def __repr__(self) -> str:
        return f"SQLitePersister({str(self.path)!r})"

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        self.file.close()

    # -- the persister protocol -------------------------------------------------------------------

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
            PersisterConflictError: ``after`` is given and the app id has a later step than it
                (checked and written in one transaction, so two processes cannot both pass).
        """
        text = dumps(state.get_all(), allow_pickle=self.allow_pickle, path="state")
        row = (partition_key or "", app_id, sequence_id, position, status, text, time.time())
        conn = self.file.connection()
        try:
            if after is UNCHECKED:
                conn.execute("INSERT OR REPLACE INTO nbflow_steps VALUES (?, ?, ?, ?, ?, ?, ?)", row)
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                latest = conn.execute(
                    "SELECT MAX(sequence_id) FROM nbflow_steps WHERE partition_key = ? AND app_id = ?",
                    (partition_key or "", app_id),
                ).fetchone()[0]
                check_writer(partition_key, app_id, latest, after)
                conn.execute("INSERT OR REPLACE INTO nbflow_steps VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self.file.fail(exc, "save a step to") from None

    def load(self, partition_key: str | None, app_id: str | None) -> PersistedRecord | None:
        """The latest step of ``app_id`` (or of the partition's latest application), or None."""
        if app_id is None:
            sql = "SELECT * FROM nbflow_steps WHERE partition_key = ? ORDER BY created_at DESC, sequence_id DESC LIMIT 1"
            args: tuple = (partition_key or "",)
        else:
            sql = "SELECT * FROM nbflow_steps WHERE partition_key = ? AND app_id = ? ORDER BY sequence_id DESC LIMIT 1"
            args = (partition_key or "", app_id)
        try:
            row = self.file.connection().execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            raise self.file.fail(exc, "read") from None
        return None if row is None else self._record(row)

    def _record(self, row: tuple) -> PersistedRecord:
        partition_key, app_id, sequence_id, position, status, text, _ = row
        where = f"state (app {app_id!r}, step {sequence_id} in {str(self.path)!r})"
        try:
            values = loads(text, allow_pickle=self.allow_pickle, path=where)
        except SerializationError:
            raise
        except (ValueError, TypeError) as exc:
            # Bytes damaged inside a row: SQLite's page checks pass, the JSON does not parse.
            msg = f"SQLitePersister could not read the {where}: it is not the JSON nbflow wrote ({type(exc).__name__}: {exc}). The file is damaged: move it aside and start a new one."
            raise PersistenceError(msg) from None
        return PersistedRecord(partition_key or None, app_id, sequence_id, position, status, State(values))

    def history(self, partition_key: str | None, app_id: str) -> list[PersistedRecord]:
        """Every saved step of ``app_id``, oldest first."""
        try:
            rows = (
                self.file.connection()
                .execute(
                    "SELECT * FROM nbflow_steps WHERE partition_key = ? AND app_id = ? ORDER BY sequence_id",
                    (partition_key or "", app_id),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise self.file.fail(exc, "read") from None
        return [self._record(row) for row in rows]

    def list_app_ids(self, partition_key: str | None = None) -> list[str]:
        """The app ids saved under ``partition_key``, most recently saved first."""
        try:
            rows = (
                self.file.connection()
                .execute(
                    "SELECT app_id, MAX(created_at) AS t FROM nbflow_steps WHERE partition_key = ? GROUP BY app_id ORDER BY t DESC",
                    (partition_key or "",),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise self.file.fail(exc, "read") from None
        return [row[0] for row in rows]

    def clear(self, partition_key: str | None = None) -> int:
        """Delete every saved step of ``partition_key``; returns how many rows went."""
        try:
            return (
                self.file.connection()
                .execute("DELETE FROM nbflow_steps WHERE partition_key = ?", (partition_key or "",))
                .rowcount
            )
        except sqlite3.Error as exc:
            raise self.file.fail(exc, "clear") from None

    def count(self) -> int:
        """How many steps are saved, across all applications."""
        try:
            return self.file.connection().execute("SELECT COUNT(*) FROM nbflow_steps").fetchone()[0]
        except sqlite3.Error as exc:
            raise self.file.fail(exc, "read") from None
