"""`ResultCache`: finished map tasks, keyed by what they compute, kept across kernel restarts.

A task's key is a digest of:

- the code it runs: its action or sub-graph, and everything that code reaches that
  is user code (functions, classes and helpers from the notebook or from modules
  outside installed packages, by their code; the globals they read, by value;
  installed packages by name and version), see `nbflow.persistence.fingerprint`;
- its inputs, and the values of the state keys it reads;
- ``depends_on``, for what the key cannot see (``os.environ``, files a task
  opens, a database it queries).

The code part is computed afresh at the start of every run, so a notebook global
edited between two runs of one `Sweep` object is noticed. A task whose key was
computed successfully before is loaded instead of run, so re-running a cell after
a kernel restart computes only new or failed points, and editing a function's
body, or a helper it calls, invalidates exactly its entries.

Entries live in a SQLite file of their own (``cache.db`` in the cache's
directory), one row per key: what the task wrote, as nbflow's JSON.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any

from nbflow.core.state import State
from nbflow.errors import CacheKeyError, PersistenceError, SerializationError
from nbflow.fingerprint import DigestMemo, value_fingerprint
from nbflow.persistence.serde import dumps, loads
from nbflow.persistence.sqlite_file import SQLiteFile

__all__ = ["ResultCache", "CacheFile", "as_cache", "DEFAULT_CACHE_DIR"]

DEFAULT_CACHE_DIR = ".nbflow-cache"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS nbflow_cache (
    key TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    written TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


class CacheFile:
    """The entries of a `ResultCache`, in a SQLite file: key -> what the task wrote.

    Example:
        >>> import tempfile, pathlib
        >>> entries = CacheFile(pathlib.Path(tempfile.mkdtemp()) / "cache.db")
        >>> entries.put("k1", {"y": (1, 2)}, "task 0")
        >>> entries.get("k1"), entries.get("k2"), len(entries)
        ({'y': (1, 2)}, None, 1)
    """

    def __init__(self, path: str | os.PathLike, *, allow_pickle: bool = False):
        self.file = SQLiteFile(path, _SCHEMA, owner="ResultCache")
        self._path = str(self.file.path)
        self.allow_pickle = allow_pickle

    def __repr__(self) -> str:
        return f"CacheFile({str(self.file.path)!r})"

    def get(self, key: str) -> dict | None:
        """What the task with ``key`` wrote, or None."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        """What the tasks with ``keys`` wrote, for those that have an entry."""
        found = {}
        # One query per slice: a query per key cost more than a cheap task. SQLite takes at
        # least 999 parameters in a statement.
        for start in range(0, len(keys), 900):
            part = keys[start : start + 900]
            marks = ",".join("?" * len(part))
            try:
                rows = (
                    self.file.connection()
                    .execute(f"SELECT key, written FROM nbflow_cache WHERE key IN ({marks})", part)
                    .fetchall()
                )
            except sqlite3.Error as exc:
                raise self.file.fail(exc, "read") from None
            for key, text in rows:
                found[key] = self._load(key, text)
        return found

    def _load(self, key: str, text: str) -> dict:
        where = f"the cache entry {key} in {self._path!r}"
        try:
            return loads(text, allow_pickle=self.allow_pickle, path=where)
        except SerializationError:
            raise
        except (ValueError, TypeError) as exc:
            msg = f"ResultCache could not read {where}: it is not the JSON nbflow wrote ({type(exc).__name__}: {exc}). The file is damaged: clear the cache (cache.clear()) or delete its folder."
            raise PersistenceError(msg) from None

    def put(self, key: str, written: dict, label: str) -> None:
        """Store ``written`` under ``key`` (replacing what was there); ``label`` names the task for people."""
        failed = self.put_many([(key, written, label)])
        if failed:
            raise failed[0][1]

    def put_many(self, entries: list[tuple[str, dict, str]]) -> list[tuple[int, Exception]]:
        """`put` each ``(key, written, label)`` in one transaction; the positions and errors of those not stored.

        A value that cannot be stored costs its own entry only. A failure of the file itself
        (disk full, locked past the timeout) raises `PersistenceError`, and none is stored.
        """
        rows, failed = [], []
        now = time.time()
        for position, (key, written, label) in enumerate(entries):
            try:
                text = dumps(written, allow_pickle=self.allow_pickle, path="the task's result")
            except SerializationError as exc:
                failed.append((position, exc))
                continue
            rows.append((key, label, text, now))
        if not rows:
            return failed
        connection = self.file.connection()
        try:
            # One transaction for the lot: a commit per entry cost more than computing a cheap task.
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany("INSERT OR REPLACE INTO nbflow_cache VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self.file.fail(exc, "write to") from None
        return failed

    def clear(self) -> int:
        """Delete every entry; how many there were."""
        try:
            return self.file.connection().execute("DELETE FROM nbflow_cache").rowcount
        except sqlite3.Error as exc:
            raise self.file.fail(exc, "clear") from None

    def __len__(self) -> int:
        try:
            return self.file.connection().execute("SELECT COUNT(*) FROM nbflow_cache").fetchone()[0]
        except sqlite3.Error as exc:
            raise self.file.fail(exc, "read") from None


class _InPersister:
    """Entries kept as step records of a persister (deprecated: how caches were stored before)."""

    PARTITION = "nbflow-cache"

    def __init__(self, persister: Any):
        self.persister = persister

    def __repr__(self) -> str:
        return repr(self.persister)

    def get(self, key: str) -> dict | None:
        record = self.persister.load(self.PARTITION, key)
        return None if record is None else record.state.get_all()

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        found = {key: self.get(key) for key in keys}
        return {key: written for key, written in found.items() if written is not None}

    def put(self, key: str, written: dict, label: str) -> None:
        self.persister.save(
            partition_key=self.PARTITION,
            app_id=key,
            sequence_id=0,
            position=label,
            state=State(written),
            status="completed",
        )

    def put_many(self, entries: list[tuple[str, dict, str]]) -> list[tuple[int, Exception]]:
        failed = []
        for position, (key, written, label) in enumerate(entries):
            try:
                self.put(key, written, label)
            except SerializationError as exc:
                failed.append((position, exc))
        return failed

    def clear(self) -> int:
        return self.persister.clear(self.PARTITION)

    def __len__(self) -> int:
        return len(self.persister.list_app_ids(self.PARTITION))


class ResultCache:
    """Stores what finished tasks wrote, under a key derived from their code and inputs.

    Args:
        store: a directory (a SQLite file ``cache.db`` is kept there). A persister
            is still taken, with a DeprecationWarning: it keeps the entries as
            step records, beside the runs it saves.
        allow_pickle: let entries hold values JSON cannot (loading them runs code:
            only for caches you trust).
        depends_on: something results depend on that the key cannot see: a value, or a
            callable with no arguments, called at the start of every run (e.g.
            ``lambda: os.environ["DATA_VERSION"]``, or the mtime of a data file).

    Example:
        >>> import tempfile
        >>> cache = ResultCache(tempfile.mkdtemp())
        >>> cache.summary()["entries"]
        0
    """

    def __init__(
        self,
        store: str | os.PathLike | Any = DEFAULT_CACHE_DIR,
        *,
        allow_pickle: bool = False,
        depends_on: Any = None,
    ):
        if isinstance(store, (str, os.PathLike)):
            self.directory: Path | None = Path(store)
            self.entries: Any = CacheFile(self.directory / "cache.db", allow_pickle=allow_pickle)
        else:
            warnings.warn(
                f"ResultCache({type(store).__name__}(...)): a cache in a persister is deprecated (its entries "
                "pose as saved steps). Give the cache a directory of its own, e.g. ResultCache('.nbflow-cache').",
                DeprecationWarning,
                stacklevel=2,
            )
            self.directory = None
            self.entries = _InPersister(store)
        self.depends_on = depends_on

    def __repr__(self) -> str:
        return f"ResultCache({str(self.directory) if self.directory else self.entries!r})"

    def salt(self) -> str | None:
        """The digest of ``depends_on`` as it is now (a callable is called), or None without one.

        Raises:
            CacheKeyError: ``depends_on`` raised, or gave a value that cannot be digested.
        """
        if self.depends_on is None:
            return None
        try:
            value = self.depends_on() if callable(self.depends_on) else self.depends_on
            return value_fingerprint(value)
        except Exception as exc:
            msg = f"ResultCache(depends_on=...) failed while computing the cache key: {type(exc).__name__}: {exc}. Make depends_on a value, or a callable with no arguments that returns plain data (a string, a number, a tuple)."
            raise CacheKeyError(msg) from exc

    def task_key(self, code: str, salt: str | None, start: str) -> str:
        """The key of a task from its code digest, the run's `salt`, and the digest of what it starts from."""
        # Three hex digests (or no salt): joined, they cannot be read two ways.
        joined = f"{code}/{salt or '-'}/{start}".encode()
        return hashlib.blake2b(joined, digest_size=16, person=b"nbflow.key.3").hexdigest()

    def key(self, graph: Any, inputs: dict, state: State) -> str:
        """The key of running ``graph`` (a `RunnableGraph`) with ``inputs`` over ``state``, computed afresh."""
        memo = DigestMemo()
        return self.task_key(memo.code(graph), self.salt(), memo.task(graph.reads, inputs, state))

    def get(self, key: str) -> dict | None:
        """What the task with ``key`` wrote, or None if it is not cached."""
        return self.entries.get(key)

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        """What the tasks with ``keys`` wrote, for those that are cached."""
        return self.entries.get_many(keys)

    def put(self, key: str, written: dict, label: str) -> None:
        """Remember that the task with ``key`` wrote ``written``; ``label`` names it for humans."""
        self.entries.put(key, written, label)

    def put_many(self, entries: list[tuple[str, dict, str]]) -> list[tuple[int, Exception]]:
        """`put` many ``(key, written, label)`` at once; the positions and errors of those not stored."""
        return self.entries.put_many(entries)

    def clear(self) -> int:
        """Forget every entry; returns how many there were."""
        return self.entries.clear()

    def summary(self) -> dict:
        """How many entries there are and, for a directory cache, its size on disk in bytes."""
        entries = len(self.entries)
        size = None
        if self.directory is not None and self.directory.exists():
            size = sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())
        return {
            "entries": entries,
            "bytes": size,
            "location": str(self.directory) if self.directory else repr(self.entries),
        }


def as_cache(spec: Any) -> ResultCache | None:
    """``cache=`` as given to a map action: None/False, True (``.nbflow-cache``), a directory, a persister or a cache."""
    if spec is None or spec is False:
        return None
    if spec is True:
        return ResultCache(DEFAULT_CACHE_DIR)
    if isinstance(spec, ResultCache):
        return spec
    if isinstance(spec, (str, os.PathLike)) or hasattr(spec, "load"):
        return ResultCache(spec)
    msg = f"cache= takes True (a .nbflow-cache folder here), a directory, a persister or a ResultCache; got {type(spec).__name__}."
    raise TypeError(msg)
