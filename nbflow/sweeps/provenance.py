"""Provenance of a sweep: what ran, where, when, with which versions and which commit.

`collect_provenance` builds the dict a sweep puts in ``df.attrs["nbflow"]``.
It is stdlib only: versions come from modules already imported or from
installed package metadata, never from importing a package, and the git
details from a ``git rev-parse`` with a short timeout. A sweep starts the git
commands on a thread when it starts (`git_in_background`), so they run while
the points do instead of after them.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import os
import platform
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from nbflow._version import __version__
from nbflow.errors import SerializationError
from nbflow.persistence.serde import to_json

__all__ = ["collect_provenance", "git_in_background", "new_run_id", "PROVENANCE_SCHEMA"]

# Bumped when a key changes meaning, so readers of old exports can tell.
PROVENANCE_SCHEMA = 1

# Distribution name -> import name, for the packages whose versions explain a sweep's results.
_PACKAGES = {
    "pandas": "pandas",
    "numpy": "numpy",
    "joblib": "joblib",
    "ipywidgets": "ipywidgets",
    "tqdm": "tqdm",
    "dask": "dask",
    "distributed": "distributed",
    "ray": "ray",
    "scikit-learn": "sklearn",
    "pyarrow": "pyarrow",
}
_GIT_TIMEOUT_S = 2.0


def collect_provenance(
    *,
    axes: Mapping[str, list],
    target_name: str,
    code_hash: str,
    executor: str,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    extra: Mapping[str, Any] | None = None,
    executor_config: str | None = None,
    git: Callable[[], dict | None] | None = None,
) -> dict:
    """Everything needed to tell later how a sweep's results were made.

    Axis values and ``extra`` values are kept as they are when nbflow's serde
    can store them (plain JSON, tuples, numpy scalars, datetimes, ...), so an
    export round-trips them exactly; anything else is kept as its ``repr``.

    Args:
        axes: each axis name and its values, in grid order.
        target_name: the name of what the sweep ran.
        code_hash: a fingerprint of the target's code.
        executor: the name of the executor that ran the points (``"threads"``).
        started_at: when the sweep started; a naive datetime is taken as local time.
        ended_at: when it ended; likewise.
        extra: anything else to record, under the ``extra`` key.
        executor_config: how that executor was set up (its repr), kept as ``executor_config``.
        git: what `git_in_background` returned when the sweep started; without it, git is asked now.

    Returns:
        A dict with ``schema``, ``target_name``, ``code_hash``, ``executor``,
        ``axes``, ``started_at`` and ``ended_at`` (ISO 8601 strings in UTC),
        ``duration_s``, ``versions`` (python, nbflow, and those of pandas,
        numpy, joblib, ipywidgets, tqdm, dask, distributed, ray, scikit-learn
        and pyarrow that are installed), ``platform`` (system, machine),
        ``hostname``, ``extra``, and ``git`` (commit, branch, dirty) when the
        working directory is inside a git repository. ``branch`` is None on a
        detached HEAD, ``dirty`` is None when ``git status`` did not answer in
        time.

    Example:
        >>> import datetime as dt
        >>> t0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
        >>> p = collect_provenance(axes={"lr": [0.1, 0.01]}, target_name="train", code_hash="ab12",
        ...                        executor="threads", started_at=t0, ended_at=t0 + dt.timedelta(seconds=90))
        >>> p["started_at"], p["duration_s"], p["axes"]
        ('2024-05-01T12:00:00+00:00', 90.0, {'lr': [0.1, 0.01]})
    """
    started, ended = _utc(started_at, "started_at"), _utc(ended_at, "ended_at")
    out: dict[str, Any] = {
        "schema": PROVENANCE_SCHEMA,
        "target_name": str(target_name),
        "code_hash": str(code_hash),
        "executor": str(executor),
        "executor_config": None if executor_config is None else str(executor_config),
        "axes": {str(name): [_storable(v) for v in values] for name, values in axes.items()},
        "started_at": started.isoformat(),
        "ended_at": ended.isoformat(),
        "duration_s": (ended - started).total_seconds(),
        "versions": _versions(),
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "hostname": socket.gethostname(),
        "extra": {str(k): _storable(v) for k, v in (extra or {}).items()},
    }
    repository = git() if git is not None else _git()
    if repository is not None:
        out["git"] = repository
    return out


def new_run_id(now: dt.datetime | None = None) -> str:
    """``20261205-074512-3fa9c1``: a run's id in the run store, sortable by start, unique across kernels."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def git_in_background() -> Callable[[], dict | None]:
    """Start asking git for the commit, branch and dirty flag; the returned function waits for the answer.

    A git command takes a few ms, more than a short sweep's points: started with the sweep, it
    overlaps its points instead of adding to them. The answer describes the repository while the
    points ran, normally as it was when they started.
    """
    answer: list = []
    thread = threading.Thread(target=lambda: answer.append(_git()), name="nbflow-provenance-git", daemon=True)
    thread.start()

    def wait() -> dict | None:
        thread.join()
        return answer[0] if answer else None

    return wait


def _utc(moment: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(moment, dt.datetime):
        msg = f"collect_provenance({name}=...) takes a datetime, not {type(moment).__name__} {moment!r}. Pass datetime.datetime.now(datetime.timezone.utc)."
        raise TypeError(msg)
    # astimezone() reads a naive datetime as local time, which is what datetime.now() gives.
    return moment.astimezone(dt.timezone.utc)


def _storable(value: Any) -> Any:
    """``value`` if serde can store it (so an export keeps it exactly), else its repr."""
    try:
        to_json(value)
    except SerializationError:
        return repr(value)
    return value


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "nbflow": __version__}
    for dist, module_name in _PACKAGES.items():
        version = getattr(sys.modules.get(module_name), "__version__", None)
        if not isinstance(version, str):
            version = _installed_version(dist)
            if version is None:
                continue
        versions[dist] = version
    return versions


@functools.cache
def _installed_version(dist: str) -> str | None:
    """The installed version of a package this process has not imported, read once per process.

    Parsing METADATA files took most of a short sweep's fixed cost. A package installed or
    upgraded later in the session is read again only by a new process, but until this process
    imports it (and then ``__version__`` is used), it had no part in this process's results.
    """
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git() -> dict | None:
    """Commit, branch and dirty flag of the repository around the working directory, or None."""
    # No optional locks: a `git status` here must not block, or be blocked by, the user's own git.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    # One command answers all three: a short sweep waits for it, and each command is a process.
    status = _run_git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], env)
    if status is not None:
        lines = status.splitlines()
        header = dict(line[2:].split(" ", 1) for line in lines if line.startswith("# ") and " " in line[2:])
        commit, branch = header.get("branch.oid"), header.get("branch.head")
        if commit is None or commit == "(initial)":
            return None
        dirty = any(line and not line.startswith("#") for line in lines)
        return {"commit": commit, "branch": None if branch == "(detached)" else branch, "dirty": dirty}
    # git status did not answer (in time): the commit and branch may still be had.
    head = _run_git(["rev-parse", "HEAD", "--abbrev-ref", "HEAD"], env)
    if head is None or len(head.split()) != 2:
        return None
    commit, branch = head.split()
    return {"commit": commit, "branch": None if branch == "HEAD" else branch, "dirty": None}


def _run_git(args: list[str], env: dict[str, str]) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        # No git binary, a timeout, an unusable working directory: provenance goes on without git.
        return None
    return done.stdout if done.returncode == 0 else None
