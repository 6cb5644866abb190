"""One SQLite file as nbflow keeps them: the persister's runs, the tracker's steps, the result cache.

Why SQLite: it ships with Python, survives a killed kernel (each write is one
transaction), and with WAL journaling many processes can write to one file at
once while readers never block. Connections are per process and per thread,
opened lazily; pickling drops them, so an owner can travel to worker processes.
The file is created readable by its owner only, carries a schema version, and
every failure comes out as a `PersistenceError` that says what to do.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from nbflow.errors import PersistenceError

__all__ = ["SQLiteFile", "open_private", "explain"]

SCHEMA_VERSION = 1
# Threads of one process set files up one at a time (a few ms): fewer opens meet SQLITE_BUSY.
_OPENING = threading.Lock()


def _unlock_after_fork() -> None:
    # A child forked while another thread was setting a file up inherits the lock held, by a
    # thread it does not have: its first open would wait for ever.
    global _OPENING
    _OPENING = threading.Lock()


os.register_at_fork(after_in_child=_unlock_after_fork)
_META = "CREATE TABLE IF NOT EXISTS nbflow_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"

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


class SQLiteFile:
    """A SQLite file with ``schema``, opened per process and thread.

    Args:
        path: the file; created (owner-only permissions) if missing.
        schema: the ``CREATE ... IF NOT EXISTS`` statements of its tables.
        owner: who uses it, for error messages (``"SQLitePersister"``).
        busy_timeout_s: how long a writer waits for another to finish.
    """

    def __init__(self, path: str | os.PathLike, schema: str, *, owner: str, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        self.schema = schema
        self.owner = owner
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, values: dict) -> None:
        self.__dict__.update(values)
        self._local = threading.local()

    def fail(self, exc: sqlite3.Error, doing: str) -> PersistenceError:
        """The error to raise for ``exc``, met while ``doing`` (e.g. "save a step to") the file."""
        msg = f"{self.owner} could not {doing} {str(self.path)!r}: {exc}. {explain(exc, self.busy_timeout_s)}"
        return PersistenceError(msg)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema made) on first use in this process."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                open_private(self.path)
                with _OPENING:
                    conn, found = self._open()
                break
            except sqlite3.OperationalError as exc:
                # SQLite answers a connection that asks for WAL mode while another opens the file
                # with SQLITE_BUSY at once, without its busy timeout: the first tasks of a step,
                # on threads or processes, all open the file together.
                busy = str(getattr(exc, "sqlite_errorname", "")).startswith("SQLITE_BUSY")
                if not busy or time.monotonic() > deadline:
                    raise self.fail(exc, "open") from None
                time.sleep(0.01)
            except sqlite3.Error as exc:
                raise self.fail(exc, "open") from None
            except OSError as exc:
                msg = f"{self.owner} could not create {str(self.path)!r}: {exc}. Check that the folder is writable, or choose another path."
                raise PersistenceError(msg) from None
        if int(found) != SCHEMA_VERSION:
            conn.close()
            msg = f"{str(self.path)!r} was written by another nbflow (schema version {found}; this nbflow reads version {SCHEMA_VERSION}). Use the nbflow version that wrote it, or start a new file."
            raise PersistenceError(msg)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _open(self) -> tuple[sqlite3.Connection, str]:
        """A new connection, the file set up: ``(connection, the file's schema version)``."""
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across a killed process (WAL is synced at checkpoints); only an OS
            # crash can lose the last writes, which a re-run recomputes.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_META + self.schema)
            conn.execute(
                "INSERT OR IGNORE INTO nbflow_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            found = conn.execute("SELECT value FROM nbflow_meta WHERE key = 'schema_version'").fetchone()[0]
        except BaseException:
            conn.close()
            raise
        return conn, found

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
