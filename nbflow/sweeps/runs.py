"""Run history: `runs` lists what the run store recorded, `load_run` reads a run back, and
`delete_run` / `delete_runs` remove runs. A sweep records itself through `record_frame`.

Nothing here needs a server: the store is a folder of Parquet files and one SQLite index
(see `nbflow.sweeps.run_store`). Deleting a run never touches the result cache.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
from collections.abc import Iterable
from typing import Any

import pandas as pd

# Registers df.nbflow on the frames load_run returns.
import nbflow.sweeps.export  # noqa: F401
from nbflow.errors import ResultsError
from nbflow.sweeps.files import warn_user
from nbflow.sweeps.naming import STATUSES
from nbflow.sweeps.run_store import RUN_STATUSES, RunStore, run_id_of

__all__ = ["runs", "load_run", "delete_run", "delete_runs", "record_frame"]


def runs(
    store: str | os.PathLike | None = None,
    *,
    name: str | Iterable[str] | None = None,
    target: str | Iterable[str] | None = None,
    status: str | Iterable[str] | None = None,
    since: Any = None,
    until: Any = None,
    best: str | dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per recorded run, oldest first.

    Args:
        store: the store's folder; by default ``nbflow.config``'s, else ``$NBFLOW_HOME/runs``,
            else ``.nbflow/runs`` here.
        name, target: keep runs whose name (or target's name) matches: a string, where ``*``
            and ``?`` are wildcards, or a list of them.
        status: keep runs that ended so: ``"complete"``, ``"interrupted"``, ``"cancelled"``
            or ``"failed"``, or a list of them.
        since, until: keep runs that started in this range (``until`` excluded): anything
            ``pd.Timestamp`` reads (``"2026-12-01"``, a datetime); a time without a zone is local.
        best: how to rank each numeric output: ``"min"`` or ``"max"`` for all, or a dict by
            output. A ranked output has one column ``best_<output>``; the others have two,
            ``min_<output>`` and ``max_<output>``, since only you know which way is better.

    Returns:
        Columns ``run_id``, ``name``, ``target``, ``kind`` (``sweep`` or ``optimize``),
        ``status``, ``started_at``, ``ended_at`` (UTC), ``duration_s``, ``executor``,
        ``points``, one count per point status (``ok``, ``cached``, ``error``, ``timeout``,
        ``pruned``, ``cancelled``), the outputs' columns, ``git_commit``, ``git_dirty`` and
        ``size_bytes``. ``.pipe(nbflow.delete_runs)`` deletes the runs it lists.

    Example:
        >>> import tempfile, nbflow
        >>> store = tempfile.mkdtemp()
        >>> _ = nbflow.sweep(lambda x: {"loss": x * x}, {"x": [1, 2]}, progress=False, name="a", store=store)
        >>> nbflow.runs(store, best="min")[["name", "status", "ok", "best_loss"]].to_dict("records")
        [{'name': 'a', 'status': 'complete', 'ok': 2, 'best_loss': 1.0}]
    """
    runs_store = RunStore(store)
    rows = runs_store.rows()
    rows = [r for r in rows if _matches(r["name"], name, "name") and _matches(r["target"], target, "target")]
    if status is not None:
        wanted = _statuses(status)
        rows = [r for r in rows if r["status"] in wanted]
    low = _moment(since, "since") if since is not None else None
    high = _moment(until, "until") if until is not None else None
    started = pd.to_datetime([r["started_at"] for r in rows], utc=True, format="ISO8601")
    rows = [
        r
        for r, s in zip(rows, started, strict=True)
        if (low is None or s >= low) and (high is None or s < high)
    ]
    frame = _frame(rows, _modes(best))
    frame.attrs["nbflow"] = {"store": str(runs_store.root)}
    return frame


def load_run(run_id: str, store: str | os.PathLike | None = None) -> pd.DataFrame:
    """The frame ``run_id`` recorded, exactly as the sweep returned it: values, dtypes,
    provenance (``attrs["nbflow"]``, with its ``run_id``), curves and logs.

    Raises:
        RunNotFoundError: no such run in the store (a KeyError).
        RunStoreError: its file is missing or damaged; the other runs are unaffected.
    """
    return RunStore(store).read(run_id_of(run_id))


def delete_run(run_id: str, store: str | os.PathLike | None = None) -> None:
    """Remove one run from the store: its index entry and its frame. The result cache is kept.

    Raises:
        RunNotFoundError: no such run in the store.
    """
    RunStore(store).delete(run_id_of(run_id))


def delete_runs(listed: pd.DataFrame, store: str | os.PathLike | None = None) -> list[str]:
    """Delete every run ``listed`` names: ``nbflow.runs(status="cancelled").pipe(nbflow.delete_runs)``.

    Returns the ids deleted. The store is the one ``listed`` came from unless ``store=`` says.
    """
    if not isinstance(listed, pd.DataFrame) or "run_id" not in listed.columns:
        msg = f"delete_runs() takes the DataFrame nbflow.runs() returns (with a run_id column); got {type(listed).__name__}. To delete one run, call nbflow.delete_run(run_id)."
        raise ResultsError(msg)
    where = store if store is not None else listed.attrs.get("nbflow", {}).get("store")
    runs_store = RunStore(where)
    ids = [str(i) for i in listed["run_id"]]
    for run_id in ids:
        runs_store.delete(run_id)
    return ids


def record_frame(frame: pd.DataFrame, store: Any, *, name: str, kind: str, status: str) -> str | None:
    """Record a sweep's finished ``frame``; returns its run id, or None (with a warning) if it could not.

    A run that cannot be recorded (a full disk, a value Parquet cannot hold) must never cost the
    results, so every failure here is a warning, and the frame loses its ``run_id``.
    """
    try:
        return RunStore(store).write(frame, name=name, kind=kind, status=status)
    except Exception as exc:
        frame.attrs.get("nbflow", {}).pop("run_id", None)
        msg = f"nbflow could not record sweep {name!r} in the run store: {exc} The results are intact in the DataFrame the sweep returned; export them with df.nbflow.export(...), or pass record=False (nbflow.config(record=False) for every sweep) to stop recording."
        warn_user(msg)
        return None


def _matches(value: str, pattern: Any, what: str) -> bool:
    if pattern is None:
        return True
    patterns = [pattern] if isinstance(pattern, str) else pattern
    if not isinstance(patterns, (list, tuple, set)) or not all(isinstance(p, str) for p in patterns):
        msg = (
            f"runs({what}=...) takes a string (with * and ? as wildcards) or a list of them; got {pattern!r}."
        )
        raise TypeError(msg)
    # The name itself always matches: "model[1]" is a name, though fnmatch reads [1] as a class.
    return any(value == p or fnmatch.fnmatchcase(value, p) for p in patterns)


def _statuses(status: Any) -> set[str]:
    wanted = {status} if isinstance(status, str) else set(status)
    unknown = wanted - set(RUN_STATUSES)
    if unknown:
        hint = " (a point's status; a run's is how the whole sweep ended)" if unknown & set(STATUSES) else ""
        msg = f"runs(status=...): {sorted(unknown)} is not a run status{hint}. Choose from {list(RUN_STATUSES)}."
        raise ValueError(msg)
    return wanted


def _moment(value: Any, what: str) -> pd.Timestamp:
    try:
        moment = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        msg = f"runs({what}={value!r}): not a date or time ({exc}). Pass e.g. '2026-12-01', '2026-12-01 14:00' or a datetime."
        raise ValueError(msg) from None
    if moment.tzinfo is None:
        moment = moment.tz_localize(dt.datetime.now().astimezone().tzinfo)
    return moment.tz_convert("UTC")


def _modes(best: Any) -> dict[str, str] | str | None:
    if best is None:
        return None
    checked = best.values() if isinstance(best, dict) else [best]
    if any(m not in ("min", "max") for m in checked):
        msg = f"runs(best=...) takes 'min' or 'max', or a dict of them by output (best={{'loss': 'min'}}); got {best!r}."
        raise ValueError(msg)
    return best


_COUNTS = ("ok", "cached", "error", "timeout", "pruned", "cancelled")


def _frame(rows: list[dict], modes: Any) -> pd.DataFrame:
    outputs = list(dict.fromkeys(o for r in rows for o in r["outputs"]))
    records = []
    for r in rows:
        record = {
            "run_id": r["run_id"],
            "name": r["name"],
            "target": r["target"],
            "kind": r["kind"],
            "status": r["status"],
            "started_at": r["started_at"],
            "ended_at": r["ended_at"],
            "executor": r["executor"],
            "points": r["points"],
            **{s: r["counts"].get(s, 0) for s in _COUNTS},
        }
        for output in outputs:
            span = r["outputs"].get(output)
            mode = modes.get(output) if isinstance(modes, dict) else modes
            if mode is not None:
                record[f"best_{output}"] = span[mode] if span else float("nan")
            else:
                record[f"min_{output}"] = span["min"] if span else float("nan")
                record[f"max_{output}"] = span["max"] if span else float("nan")
        record["git_commit"] = r["git_commit"]
        record["git_dirty"] = None if r["git_dirty"] is None else bool(r["git_dirty"])
        record["size_bytes"] = r["bytes"]
        records.append(record)
    base = ["run_id", "name", "target", "kind", "status", "started_at", "ended_at", "executor", "points"]
    frame = pd.DataFrame(
        records, columns=None if records else [*base, *_COUNTS, "git_commit", "git_dirty", "size_bytes"]
    )
    for column in ("started_at", "ended_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    frame.insert(7, "duration_s", (frame["ended_at"] - frame["started_at"]).dt.total_seconds())
    frame["git_dirty"] = frame["git_dirty"].astype("boolean")
    return frame
