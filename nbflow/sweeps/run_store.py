"""The run store: every sweep's frame, kept as a Parquet file, listed in one small SQLite index.

Layout of a store folder (``.nbflow/runs`` by default, see `nbflow.settings.run_store_path`):

- ``<run_id>.parquet``: the frame as ``df.nbflow.export`` writes it, provenance, curves and
  logs in the file's metadata, so `load_run` gives back the frame exactly;
- ``index.sqlite``: one row per run, with what `nbflow.runs` lists (counts by status, each
  numeric output's range, git), so listing never opens a frame.

Recording is append-only. The frame is written (through a temporary file, moved into place)
before its index row, so a run killed half-way is never listed; its orphan file, if any, is
never read. Folder and files are readable by their owner only. SQLite in WAL mode lets many
kernels record into one store at once.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

import pandas as pd

from nbflow.errors import ExportError, ResultsError, RunNotFoundError, RunStoreError, SerializationError
from nbflow.persistence.serde import to_json
from nbflow.persistence.sqlite_file import SQLiteFile
from nbflow.settings import run_store_path
from nbflow.sweeps import plots
from nbflow.sweeps.dtype_spec import without_index
from nbflow.sweeps.files import warn_user
from nbflow.sweeps.formats import read_results, write_results
from nbflow.sweeps.naming import RUN_FIELDS, STATUSES, run_column

__all__ = ["RunStore", "RUN_STATUSES", "run_id_of"]

# How a run ended: every point ran; a Stop, Ctrl-C or a kernel interrupt; cancel(); a point
# that failed with on_error="raise".
RUN_STATUSES = ("complete", "interrupted", "cancelled", "failed")
INDEX = "index.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    executor TEXT NOT NULL,
    points INTEGER NOT NULL,
    counts TEXT NOT NULL,
    outputs TEXT NOT NULL,
    axes TEXT NOT NULL,
    git_commit TEXT,
    git_dirty INTEGER,
    file TEXT NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
"""
_COLUMNS = (
    "run_id, name, target, kind, status, started_at, ended_at, executor, points, counts, outputs, "
    "axes, git_commit, git_dirty, file, bytes"
)


class RunStore:
    """One store folder: write a run, list the index, read or delete a run.

    Example:
        >>> import tempfile, nbflow
        >>> store = RunStore(tempfile.mkdtemp())
        >>> df = nbflow.sweep(lambda x: x * x, {"x": [1, 2]}, progress=False, store=store.root)
        >>> [r["status"] for r in store.rows()], store.read(df.attrs["nbflow"]["run_id"])["result"].tolist()
        (['complete'], [1, 4])
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = run_store_path(root).absolute()
        self._index = SQLiteFile(self.root / INDEX, _SCHEMA, owner="The run store")

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # -- writing ----------------------------------------------------------------------------

    def write(self, frame: pd.DataFrame, *, name: str, kind: str, status: str) -> str:
        """Record ``frame`` (a sweep's, its provenance in ``attrs["nbflow"]`` with its ``run_id``)."""
        provenance = frame.attrs.get("nbflow", {})
        run_id = provenance["run_id"]
        self._make_folder()
        target = self.root / f"{run_id}.parquet"
        flat = without_index(frame)
        try:
            write_results(flat, target, to_json(provenance, path="df.attrs['nbflow']"), ".parquet")
        except (SerializationError, ExportError):
            # Cells checked one by one only now: a frame of numbers never pays for it.
            stored, unstored = _storable(flat)
            if not unstored:
                raise
            kept = {**provenance, "unstored": unstored}
            write_results(stored, target, to_json(kept, path="df.attrs['nbflow']"), ".parquet")
        git = provenance.get("git") or {}
        row = (
            run_id,
            str(name),
            str(provenance.get("target_name", "")),
            kind,
            status,
            provenance.get("started_at", ""),
            provenance.get("ended_at", ""),
            str(provenance.get("executor", "")),
            len(frame),
            json.dumps(_counts(frame)),
            json.dumps(_ranges(frame)),
            json.dumps([str(a) for a in plots.sweep_axes(frame)]),
            git.get("commit"),
            None if git.get("dirty") is None else int(bool(git["dirty"])),
            target.name,
            target.stat().st_size,
        )
        self._execute(
            "record a run in", f"INSERT INTO runs ({_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row
        )
        return run_id

    def _make_folder(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            msg = f"Cannot create the run store {str(self.root)!r}: {exc.strerror}. Point it elsewhere with nbflow.config(store=...) or NBFLOW_HOME, or pass record=False."
            raise RunStoreError(msg) from None

    # -- reading ----------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """Every recorded run, oldest first, as the index holds it (JSON fields decoded)."""
        return self._select("ORDER BY started_at, rowid", ())

    def row(self, run_id: str) -> dict[str, Any]:
        """The index row of ``run_id``."""
        found = self._select("WHERE run_id = ?", (str(run_id),))
        if found:
            return found[0]
        known = [r["run_id"] for r in self.rows()][-5:]
        hint = f" The latest: {known}." if known else " The store is empty."
        msg = f"No run {run_id!r} in the run store {str(self.root)!r}.{hint} List them with nbflow.runs(), or pass store= the folder it was recorded in."
        raise RunNotFoundError(msg)

    def _select(self, where: str, params: tuple) -> list[dict[str, Any]]:
        if not (self.root / INDEX).exists():
            return []
        found = self._execute("list the runs in", f"SELECT {_COLUMNS} FROM runs {where}", params)
        names = [c.strip() for c in _COLUMNS.split(",")]
        out = []
        for values in found:
            row = dict(zip(names, values, strict=True))
            for field in ("counts", "outputs", "axes"):
                row[field] = json.loads(row[field])
            out.append(row)
        return out

    def read(self, run_id: str) -> pd.DataFrame:
        """The frame of ``run_id``, exactly as the sweep returned it."""
        row = self.row(run_id)
        path = self.root / row["file"]
        if not path.is_file():
            msg = f"Run {run_id!r} is listed in {str(self.root / INDEX)!r} but its file {path.name} is gone. Delete the entry with nbflow.delete_run({run_id!r})."
            raise RunStoreError(msg)
        try:
            frame = read_results(path, ".parquet")
        except Exception as exc:
            msg = f"Cannot read run {run_id!r} from {str(path)!r}: {exc}. The file is damaged; the other runs are unaffected. Delete this one with nbflow.delete_run({run_id!r})."
            raise RunStoreError(msg) from None
        unstored = frame.attrs["nbflow"].pop("unstored", None)
        if unstored:
            said = ", ".join(f"{column!r} ({', '.join(kinds)})" for column, kinds in unstored.items())
            msg = f"Run {run_id!r}: columns {said} held objects nbflow cannot store, so they were recorded as their repr() text and load as text. To keep such values, register their type with nbflow.register_serde(...) before the sweep."
            warn_user(msg)
        return frame

    def size(self) -> int:
        """The bytes the store takes on disk: frames and index."""
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.iterdir() if p.is_file())

    # -- deleting ---------------------------------------------------------------------------

    def delete(self, run_id: str) -> None:
        """Remove ``run_id``: its index row first, then its file. The result cache is not touched."""
        row = self.row(run_id)
        self._execute("delete a run from", "DELETE FROM runs WHERE run_id = ?", (run_id,))
        (self.root / row["file"]).unlink(missing_ok=True)

    def _execute(self, doing: str, sql: str, params: tuple) -> list[tuple]:
        """Run one statement on the index, and close it: kernels come and go, and a connection
        left open would hold the WAL (and a moved-aside index) until the kernel ends."""
        try:
            conn = self._index.connection()
        except RunStoreError:
            raise
        except Exception as exc:
            msg = f"{exc} Recorded frames are in {str(self.root)!r}, one .parquet file per run; nbflow.load_results() reads any of them."
            raise RunStoreError(msg) from None
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._index.fail(exc, doing) from None
        finally:
            self._index.close()


def run_id_of(run_id: Any) -> str:
    """A run id given as itself, or as the recorded frame that carries it."""
    if isinstance(run_id, pd.DataFrame):
        found = run_id.attrs.get("nbflow", {}).get("run_id")
        if found is None:
            msg = "This DataFrame was not recorded (no attrs['nbflow']['run_id']): record=False, or it is a slice that lost its attrs. Pass a run id from nbflow.runs()."
            raise ResultsError(msg)
        return str(found)
    if not isinstance(run_id, str):
        msg = f"A run id is a string like '20261205-074512-3fa9c1' (see nbflow.runs()['run_id']); got {type(run_id).__name__} {run_id!r}."
        raise TypeError(msg)
    return run_id


def _storable(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """``frame`` with each cell nbflow's serde cannot store (a fitted model, a lock) as its repr,
    and the columns that changed, with the types found there.

    Returning a model from a point is common, and its run should still be recorded: the numbers
    are what history is for. `RunStore.read` warns which columns came back as text.
    """
    changed: dict[str, list[str]] = {}
    stored = frame.copy(deep=False)
    for name in frame.columns:
        if frame[name].dtype != object:
            continue
        kinds: dict[str, None] = {}

        def keep(value: Any, kinds: dict = kinds) -> Any:
            try:
                to_json(value)
            except SerializationError:
                kinds[type(value).__name__] = None
                return repr(value)
            return value

        fixed = frame[name].map(keep)
        if kinds:
            changed[str(name)] = list(kinds)
            stored[name] = fixed
    return stored, changed


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    status = run_column(frame, "status")
    if status not in frame.columns:
        return {}
    counts = frame[status].astype(str).value_counts()
    return {s: int(counts[s]) for s in STATUSES if s in counts.index and counts[s]}


def _ranges(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Each numeric output's lowest and highest value among the finished rows."""
    provenance = frame.attrs.get("nbflow", {})
    fields = {run_column(frame, f) for f in RUN_FIELDS}
    axes = set(plots.sweep_axes(frame)) | set(provenance.get("axes", {}))
    status = run_column(frame, "status")
    done = frame[frame[status].isin(("ok", "cached"))] if status in frame.columns else frame
    out = {}
    for column in frame.columns:
        if column in fields or column in axes or not plots.is_number(frame[column]):
            continue
        values = pd.to_numeric(done[column], errors="coerce").dropna()
        if len(values):
            out[str(column)] = {"min": float(values.min()), "max": float(values.max())}
    return out
