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

Entries live in any persister (a SQLite file by default), stored as the keys
the task wrote, under the partition ``"nbflow-cache"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nbflow.core.state import State
from nbflow.errors import CacheKeyError
from nbflow.persistence.fingerprint import DigestMemo, value_fingerprint
from nbflow.persistence.sqlite import SQLitePersister

__all__ = ["ResultCache", "as_cache", "DEFAULT_CACHE_DIR"]

PARTITION = "nbflow-cache"
DEFAULT_CACHE_DIR = ".nbflow-cache"


class ResultCache:
    """Stores what finished tasks wrote, under a key derived from their code and inputs.

    Args:
        store: a directory (a SQLite file ``cache.db`` is kept there) or a persister.
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
            store = SQLitePersister(self.directory / "cache.db", allow_pickle=allow_pickle)
        else:
            self.directory = None
        self.store = store
        self.depends_on = depends_on

    def __repr__(self) -> str:
        return f"ResultCache({str(self.directory) if self.directory else self.store!r})"

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
        return value_fingerprint((code, salt, start))

    def key(self, graph: Any, inputs: dict, state: State) -> str:
        """The key of running ``graph`` (a `RunnableGraph`) with ``inputs`` over ``state``, computed afresh."""
        memo = DigestMemo()
        return self.task_key(memo.code(graph), self.salt(), memo.task(graph.reads, inputs, state))

    def get(self, key: str) -> dict | None:
        """What the task with ``key`` wrote, or None if it is not cached."""
        record = self.store.load(PARTITION, key)
        return None if record is None else record.state.get_all()

    def put(self, key: str, written: dict, label: str) -> None:
        """Remember that the task with ``key`` wrote ``written``; ``label`` names it for humans."""
        self.store.save(
            partition_key=PARTITION,
            app_id=key,
            sequence_id=0,
            position=label,
            state=State(written),
            status="completed",
        )

    def clear(self) -> int:
        """Forget every entry; returns how many there were."""
        return self.store.clear(PARTITION)

    def summary(self) -> dict:
        """How many entries there are and, for a directory cache, its size on disk in bytes."""
        entries = len(self.store.list_app_ids(PARTITION))
        size = None
        if self.directory is not None and self.directory.exists():
            size = sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())
        return {
            "entries": entries,
            "bytes": size,
            "location": str(self.directory) if self.directory else repr(self.store),
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
