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
