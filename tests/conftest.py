"""Shared fixtures. The autouse check makes every test prove it leaves nothing running behind."""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time

import pytest


def _leftovers(threads_before: set[threading.Thread]) -> list[str]:
    leaked = [f"thread {t.name!r}" for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    leaked += [f"process {p.name!r} (pid {p.pid})" for p in multiprocessing.active_children()]
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None:
        leaked += [f"progress bar {bar.desc!r}" for bar in list(getattr(tqdm.tqdm, "_instances", ()))]
    return leaked


@pytest.fixture(autouse=True)
def nothing_left_running():
    """Fail a test that leaves a thread, a child process or an open progress bar behind."""
    before = set(threading.enumerate())
    yield
    # Pools wind down asynchronously after shutdown; give them a moment before calling it a leak.
    deadline = time.monotonic() + 5
    while (leaked := _leftovers(before)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leaked, f"the test left running: {', '.join(leaked)}"


def pytest_configure(config):
    # Worker processes (loky) import test modules by name to unpickle module-level actions;
    # pytest puts the test folders on the parent's sys.path only, so pass them on.
    import os
    from pathlib import Path

    tests = Path(__file__).parent
    folders = [
        str(tests),
        *(str(p) for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
    ]
    os.environ["PYTHONPATH"] = os.pathsep.join([*folders, os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )


EXECUTORS = ["sequential", "threads", "processes", "async"]


@pytest.fixture(params=EXECUTORS)
def executor_name(request):
    """Each executor name in turn; process pools are shut down afterwards so none outlives the test."""
    yield request.param
    if request.param == "processes":
        from nbflow import MultiProcessExecutor

        MultiProcessExecutor().shutdown()


@pytest.fixture
def shutdown_processes():
    """Stop loky's reusable workers after a test that starts them."""
    yield
    from nbflow import MultiProcessExecutor

    MultiProcessExecutor().shutdown()
