"""Faults survived with nothing lost: killed workers, interrupts, and a crashing task (issue: reliability)."""

import multiprocessing
import os
import signal
import threading
import time

from nbflow import Sweep, grid

LOG_ENV = "NBFLOW_TEST_FAULT_LOG"


def slow_square(x):
    """A point that takes a moment and leaves a trace, so the test can kill a worker mid-sweep."""
    time.sleep(0.05)
    with open(os.environ[LOG_ENV], "a") as log:
        log.write(f"{x}\n")
    return {"y": x * x}


def crash_on_seven(x):
    """Point 7 takes its worker process down, every time; the others are ordinary."""
    if x == 7:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"y": x * x}


def test_fault_killed_loky_worker_mid_sweep_loses_nothing(tmp_path, monkeypatch, shutdown_processes):
    """SIGKILL of a worker process mid-sweep: the sweep finishes and every point has its right result."""
    log = tmp_path / "done.log"
    log.touch()
    monkeypatch.setenv(LOG_ENV, str(log))
    killed = []

    def kill_a_worker():
        deadline = time.monotonic() + 60
        while len(log.read_text().split()) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        workers = [p for p in multiprocessing.active_children() if "Loky" in type(p).__name__]
        os.kill(workers[0].pid, signal.SIGKILL)
        killed.append(workers[0].pid)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    df = Sweep(slow_square, grid(x=range(40)), executor="processes", progress=False).run()
    killer.join()
    assert len(killed) == 1
    assert len(df) == 40 and list(df["status"]) == ["ok"] * 40
    assert df["y"].tolist() == [x * x for x in range(40)]


def test_fault_task_that_kills_its_worker_every_time_is_recorded_as_failed(shutdown_processes):
    """A point that crashes its worker twice becomes an error row naming it; all other points finish."""
    df = Sweep(crash_on_seven, grid(x=range(12)), executor="processes", progress=False).run()
    assert len(df) == 12
    assert list(df["status"]) == ["ok"] * 7 + ["error"] + ["ok"] * 4
    assert "Task 7 of 'crash_on_seven' (x=7) took its worker process down twice" in df.loc[7, "error"]
    assert df.loc[df["status"] == "ok", "y"].tolist() == [x * x for x in range(12) if x != 7]
