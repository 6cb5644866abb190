"""`SQLitePersister`: the embedded default, one SQLite file holding every saved step.

Why SQLite: it ships with Python, survives a killed kernel (each save is one
transaction), and with WAL journaling many processes can write to one file at
once while readers never block (a parallel map on processes saves from every
worker). Connections are per process and per thread, opened lazily; pickling
the persister drops them so it can travel to worker processes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from nbflow.core.persistence import UNCHECKED, PersistedRecord, check_writer
from nbflow.core.state import State
from nbflow.errors import PersistenceError, SerializationError
from nbflow.persistence import serde

__all__ = ["SQLitePersister", "open_private", "explain"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS nbflow_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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


# Writes the OS refused for want of room. SQLite reports ENOSPC as SQLITE_FULL, but a file-size
# limit (EFBIG, ulimit -f) or a quota (EDQUOT) as SQLITE_IOERR_WRITE, "disk I/O error".
_NO_ROOM = ("SQLITE_FULL", "SQLITE_IOERR_WRITE", "SQLITE_IOERR_SHMSIZE")


def explain(exc: sqlite3.Error, busy_timeout_s: float) -> str:
    """The likely cause of a SQLite error and what to do about it, as a sentence for a message."""
    text = str(exc)
    if getattr(exc, "sqlite_errorname", None) in _NO_ROOM or ("disk" in text and "full" in text):
        return "The disk is full, or the file reached a size limit (a quota, or ulimit -f): free some space or raise the limit, then try again. What was being written was not saved; what was saved before is intact."
    if "readonly" in text or "unable to open" in text:
        return "Check that the folder exists and is writable, or choose another path."
    if "not a database" in text or "malformed" in text:
        return "The file is damaged or is not an nbflow database: move it aside and start a new one."
    if "locked" in text:
        return (
            f"Another process held the database for over {busy_timeout_s:g} s; raise busy_timeout_s or retry."
        )
    return "See the SQLite message above."


def open_private(path: Path) -> None:
    """Create ``path`` readable by its owner only, if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


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
        self.path = Path(path)
        self.allow_pickle = allow_pickle
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, values: dict) -> None:
        self.__dict__.update(values)
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SQLitePersister({str(self.path)!r})"

    # -- the connection ------------------------------------------------------------------------

    def _fail(self, exc: sqlite3.Error, doing: str) -> PersistenceError:
        msg = f"SQLitePersister could not {doing} {str(self.path)!r}: {exc}. {explain(exc, self.busy_timeout_s)}"
        return PersistenceError(msg)

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        try:
            open_private(self.path)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across a killed process (WAL is synced at checkpoints); only an OS
            # crash can lose the last steps, which a re-run recomputes.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO nbflow_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            found = conn.execute("SELECT value FROM nbflow_meta WHERE key = 'schema_version'").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._fail(exc, "open") from None
        except OSError as exc:
            msg = f"SQLitePersister could not create {str(self.path)!r}: {exc}. Check that the folder is writable, or choose another path."
            raise PersistenceError(msg) from None
        if int(found) != SCHEMA_VERSION:
            conn.close()
            msg = f"{str(self.path)!r} was written by another nbflow (schema version {found}; this nbflow reads version {SCHEMA_VERSION}). Use the nbflow version that wrote it, or start a new file."
            raise PersistenceError(msg)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

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
        text = serde.dumps(state.get_all(), allow_pickle=self.allow_pickle, path="state")
        row = (partition_key or "", app_id, sequence_id, position, status, text, time.time())
        conn = self._connection()
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
            raise self._fail(exc, "save a step to") from None

    def load(self, partition_key: str | None, app_id: str | None) -> PersistedRecord | None:
        """The latest step of ``app_id`` (or of the partition's latest application), or None."""
        if app_id is None:
            sql = "SELECT * FROM nbflow_steps WHERE partition_key = ? ORDER BY created_at DESC, sequence_id DESC LIMIT 1"
            args: tuple = (partition_key or "",)
        else:
            sql = "SELECT * FROM nbflow_steps WHERE partition_key = ? AND app_id = ? ORDER BY sequence_id DESC LIMIT 1"
            args = (partition_key or "", app_id)
        try:
            row = self._connection().execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            raise self._fail(exc, "read") from None
        return None if row is None else self._record(row)

    def _record(self, row: tuple) -> PersistedRecord:
        partition_key, app_id, sequence_id, position, status, text, _ = row
        where = f"state (app {app_id!r}, step {sequence_id} in {str(self.path)!r})"
        try:
            values = serde.loads(text, allow_pickle=self.allow_pickle, path=where)
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
                self._connection()
                .execute(
                    "SELECT * FROM nbflow_steps WHERE partition_key = ? AND app_id = ? ORDER BY sequence_id",
                    (partition_key or "", app_id),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise self._fail(exc, "read") from None
        return [self._record(row) for row in rows]

    def list_app_ids(self, partition_key: str | None = None) -> list[str]:
        """The app ids saved under ``partition_key``, most recently saved first."""
        try:
            rows = (
                self._connection()
                .execute(
                    "SELECT app_id, MAX(created_at) AS t FROM nbflow_steps WHERE partition_key = ? GROUP BY app_id ORDER BY t DESC",
                    (partition_key or "",),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise self._fail(exc, "read") from None
        return [row[0] for row in rows]

    def clear(self, partition_key: str | None = None) -> int:
        """Delete every saved step of ``partition_key``; returns how many rows went."""
        try:
            return (
                self._connection()
                .execute("DELETE FROM nbflow_steps WHERE partition_key = ?", (partition_key or "",))
                .rowcount
            )
        except sqlite3.Error as exc:
            raise self._fail(exc, "clear") from None

    def count(self) -> int:
        """How many steps are saved, across all applications."""
        try:
            return self._connection().execute("SELECT COUNT(*) FROM nbflow_steps").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._fail(exc, "read") from None
