"""collect_provenance: the given fields, versions, platform, and git details when there is a repository."""

from __future__ import annotations

import datetime as dt
import json
import platform
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbflow
from nbflow import ApplicationBuilder, MultiProcessExecutor, Sweep
from nbflow.persistence.serde import dumps, loads
from nbflow.sweeps import provenance as provenance_module
from nbflow.sweeps.provenance import collect_provenance

REPO = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def _collect(**overrides):
    kwargs = {
        "axes": {"lr": [0.1, 0.01], "seed": [0, 1, 2]},
        "target_name": "train",
        "code_hash": "c0ffee",
        "executor": "threads",
        "started_at": T0,
        "ended_at": T0 + dt.timedelta(minutes=2, seconds=3.5),
    }
    return collect_provenance(**{**kwargs, **overrides})


def test_collect_provenance_records_the_given_fields():
    """Target, code hash, executor, axes and extra are kept; times become UTC ISO strings with a duration."""
    p = _collect(extra={"dataset": "mnist", "split": (0.8, 0.2)})
    assert p["target_name"] == "train" and p["code_hash"] == "c0ffee" and p["executor"] == "threads"
    assert p["axes"] == {"lr": [0.1, 0.01], "seed": [0, 1, 2]}
    assert p["started_at"] == "2024-05-01T12:00:00+00:00"
    assert p["ended_at"] == "2024-05-01T12:02:03.500000+00:00"
    assert p["duration_s"] == 123.5
    assert p["extra"] == {"dataset": "mnist", "split": (0.8, 0.2)}
    assert p["schema"] == 1


def test_collect_provenance_reads_naive_datetimes_as_local_time():
    """A naive datetime (datetime.now()) is converted from local time to UTC."""
    naive = dt.datetime(2024, 5, 1, 12, 0)
    p = _collect(started_at=naive, ended_at=naive)
    assert p["started_at"] == naive.astimezone(dt.timezone.utc).isoformat()
    assert p["extra"] == {}


def test_collect_provenance_rejects_a_non_datetime():
    """A string for started_at is a TypeError naming the argument and what to pass."""
    with pytest.raises(
        TypeError, match=r"collect_provenance\(started_at=...\) takes a datetime, not str '2024-05-01'"
    ):
        _collect(started_at="2024-05-01")


def test_collect_provenance_keeps_storable_values_and_reprs_the_rest():
    """Axis values serde can store stay as they are (numpy, tuples); others become their repr."""

    class Model:
        def __repr__(self):
            return "Model(depth=3)"

    p = _collect(axes={"lr": [np.float64(0.5), (1, 2)], "model": [Model()]})
    assert p["axes"]["lr"] == [np.float64(0.5), (1, 2)]
    assert type(p["axes"]["lr"][0]) is np.float64
    assert p["axes"]["model"] == ["Model(depth=3)"]
    assert loads(dumps(p)) == p


def test_collect_provenance_is_plain_json_for_plain_axes():
    """With plain axis values the whole dict goes through json.dumps unchanged."""
    p = _collect()
    assert json.loads(json.dumps(p)) == p


def test_collect_provenance_versions_name_python_nbflow_and_installed_packages():
    """versions holds python, nbflow and the installed packages' versions, and skips missing ones."""
    versions = _collect()["versions"]
    assert versions["python"] == platform.python_version()
    assert versions["nbflow"] == nbflow.__version__
    assert versions["pandas"] == pd.__version__
    assert versions["numpy"] == np.__version__
    assert {"joblib", "tqdm", "ipywidgets"} <= set(versions)
    assert set(versions) <= {"python", "nbflow", *provenance_module._PACKAGES}
    for dist, module in provenance_module._PACKAGES.items():
        if module not in sys.modules and not _installed(dist):
            assert dist not in versions


def _installed(dist: str) -> bool:
    import importlib.metadata

    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_collect_provenance_imports_no_package_to_read_its_version():
    """Reading versions imports none of pandas, numpy, dask, ray, sklearn, ipywidgets (checked in a fresh process)."""
    code = (
        "import sys, datetime as dt\n"
        "from nbflow.sweeps.provenance import collect_provenance\n"
        "t = dt.datetime.now(dt.timezone.utc)\n"
        "p = collect_provenance(axes={}, target_name='t', code_hash='h', executor='e', started_at=t, ended_at=t)\n"
        "heavy = ['pandas', 'numpy', 'dask', 'distributed', 'ray', 'sklearn', 'ipywidgets', 'pyarrow']\n"
        "print(sorted(m for m in heavy if m in sys.modules), 'pandas' in p['versions'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60, check=True
    )
    assert done.stdout.split() == ["[]", "True"]


def test_collect_provenance_platform_and_hostname():
    """platform names the system and machine; hostname is this machine's."""
    p = _collect()
    assert p["platform"] == {"system": platform.system(), "machine": platform.machine()}
    assert p["hostname"] == socket.gethostname()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")
def test_collect_provenance_has_the_git_commit_inside_a_repository(monkeypatch):
    """Run inside the nbflow checkout, git holds HEAD's commit, the branch and a dirty flag."""
    monkeypatch.chdir(REPO / "nbflow")
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO, check=False)
    if head.returncode != 0:
        pytest.skip("the tests do not run from a git checkout with commits")
    git = _collect()["git"]
    assert git["commit"] == head.stdout.strip()
    assert len(git["commit"]) == 40
    assert isinstance(git["dirty"], bool)
    assert git["branch"] is None or isinstance(git["branch"], str)


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")
def test_collect_provenance_git_branch_commit_and_dirty_flag_follow_the_repository(tmp_path, monkeypatch):
    """A fresh repository through its states: no commit yet, clean, edited, untracked file, detached HEAD."""
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    _git(repo, "init", "-q", "-b", "feature/x")
    _git(repo, "config", "user.email", "a@b.c")
    _git(repo, "config", "user.name", "a")
    (repo / "train.py").write_text("lr = 0.1\n")
    assert "git" not in _collect()  # no commit yet: nothing to name
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "one")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    assert _collect()["git"] == {"commit": commit, "branch": "feature/x", "dirty": False}
    (repo / "notes.txt").write_text("untracked files do not make the tree dirty\n")
    assert _collect()["git"]["dirty"] is False
    (repo / "train.py").write_text("lr = 0.2\n")
    assert _collect()["git"] == {"commit": commit, "branch": "feature/x", "dirty": True}
    _git(repo, "checkout", "-q", "train.py")
    _git(repo, "checkout", "-q", "--detach")
    assert _collect()["git"] == {"commit": commit, "branch": None, "dirty": False}


def test_collect_provenance_has_no_git_outside_a_repository(tmp_path, monkeypatch):
    """In a directory outside any repository the git key is left out."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert "git" not in _collect()


def test_collect_provenance_has_no_git_without_the_git_binary(monkeypatch):
    """With no git on PATH the git key is left out, and nothing is raised."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PATH", "")
    assert "git" not in _collect()


def test_collect_provenance_swallows_a_git_timeout(monkeypatch):
    """A git that does not answer in time costs the git key, not the sweep."""

    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(cmd=args[0], timeout=kwargs.get("timeout"))

    monkeypatch.setattr(provenance_module.subprocess, "run", hang)
    assert "git" not in _collect()


def test_collect_provenance_round_trips_through_an_export(tmp_path):
    """Provenance put in attrs['nbflow'] comes back equal from every format that needs no extra."""
    import nbflow.sweeps.export  # noqa: F401 - registers df.nbflow
    from nbflow.sweeps.export import load_results

    df = pd.DataFrame({"lr": [0.1, 0.01], "acc": [0.8, 0.9]})
    df.attrs["nbflow"] = _collect(axes={"lr": [0.1, 0.01], "shape": [(2, 2)]})
    for ext in (".csv", ".json"):
        assert load_results(df.nbflow.export(tmp_path / f"r{ext}")).attrs["nbflow"] == df.attrs["nbflow"]


@pytest.mark.parametrize(
    ("given", "used"),
    [(None, "threads"), ("sequential", "sequential"), (MultiProcessExecutor(max_concurrency=1), "processes")],
)
def test_provenance_records_the_executor_actually_used(given, used, shutdown_processes):
    """executor=None, a name or an executor object: the provenance names the executor that ran the points."""
    df = Sweep(lambda x: x, {"x": [1]}, executor=given, progress=False).run()
    assert df.attrs["nbflow"]["executor"] == used


def test_provenance_records_the_applications_executor_for_a_sweep_inside_it():
    """A sweep with no executor of its own, in an application that chose one, records the application's."""
    s = Sweep(lambda x: x, {"x": [1]}, executor=None, progress=False)
    app = ApplicationBuilder().with_actions(s=s).with_entrypoint("s").with_executor("sequential").build()
    assert app.run()[2]["results"].attrs["nbflow"]["executor"] == "sequential"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")
def test_a_sweep_asks_git_while_its_points_run_not_after_them(tmp_path, monkeypatch):
    """The git commands start with the sweep: a point that waits for them, then edits a tracked file,
    finds the record already taken (clean), where asking after the points would say dirty."""
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    tracked = tmp_path / "model.py"
    tracked.write_text("A = 1\n")
    for args in (["init", "-q", "-b", "main"], ["add", "model.py"], ["commit", "-qm", "first"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    asked = []

    def edits(x):
        for thread in threading.enumerate():
            if thread.name == "nbflow-provenance-git":
                asked.append(thread.name)
                thread.join()
        tracked.write_text(f"A = {x}\n")
        return x

    df = Sweep(edits, {"x": [2]}, executor="sequential", progress=False).run()
    assert asked == ["nbflow-provenance-git"]
    git = df.attrs["nbflow"]["git"]
    assert git["dirty"] is False and git["branch"] == "main"
    assert provenance_module._git()["dirty"] is True  # asked now, git sees the edit
