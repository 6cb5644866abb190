"""Reports reach the driver while the point that makes them still runs, on every executor.

`Sweep.curves()` shows them: from the driver's own threads at once, from worker processes, Dask
and Ray through the step's channel within a fraction of a second. A point waits on a file the
test creates only once its reports were heard, so a report that came only with the result
would hang the test instead of passing it.
"""

from __future__ import annotations

import pathlib
import threading
import time

import pandas as pd
import pytest

import nbflow
from nbflow import Sweep, grid

LIVE = [
    "sequential",
    "threads",
    "processes",
    "async",
    pytest.param("dask", marks=pytest.mark.cluster),
    pytest.param("ray", marks=pytest.mark.cluster),
]
HEARD_WITHIN_S = 60  # a deadline for a broken channel, not a timing: the usual wait is milliseconds


def reports_then_waits(gate, lr):
    """Reports three steps, then holds until the test opens the gate."""
    for step in range(3):
        nbflow.report(step=step, loss=lr / (step + 1))
    while not pathlib.Path(gate).exists():
        time.sleep(0.005)
    return {"done": True}


def _run_in_background(sweep):
    finished = {}
    thread = threading.Thread(target=lambda: finished.setdefault("df", sweep.run()))
    thread.start()
    return thread, finished


def _wait_for(condition):
    deadline = time.monotonic() + HEARD_WITHIN_S
    while not condition():
        assert time.monotonic() < deadline, "the reports of a running point never reached the driver"
        time.sleep(0.01)


@pytest.mark.parametrize("executor_named", LIVE, indirect=True)
def test_reports_reach_the_driver_while_the_point_runs(executor_named, tmp_path):
    gate = tmp_path / "go"
    s = Sweep(
        reports_then_waits,
        grid(gate=[str(gate)], lr=[1.0]),
        executor=executor_named,
        progress=False,
    )
    thread, finished = _run_in_background(s)
    try:
        _wait_for(lambda: len(s.curves()) == 3)
        assert len(s.results) == 0  # the point has not finished: these came while it ran
        live = s.curves()
        assert live[["lr", "task_id", "step", "loss"]].values.tolist() == [
            [1.0, 0, 0, 1.0],
            [1.0, 0, 1, 0.5],
            [1.0, 0, 2, 1.0 / 3],
        ]
    finally:
        gate.touch()
        thread.join()
    df = finished["df"]
    assert df["status"].tolist() == ["ok"]
    assert s.curves().equals(df.nbflow.curves())


def retried_then_waits(gate, marks, x):
    """Reports two steps and fails on the first attempt; on the second reports one and waits."""
    mark = pathlib.Path(marks) / str(x)
    first = not mark.exists()
    mark.touch()
    for step in range(2 if first else 1):
        nbflow.report(step=step, attempt=2 - first)
    if first:
        raise ValueError("first attempt")
    while not pathlib.Path(gate).exists():
        time.sleep(0.005)


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_retry_starts_the_live_curve_afresh(executor, tmp_path, shutdown_processes):
    gate = tmp_path / "go"
    s = Sweep(
        retried_then_waits,
        grid(gate=[str(gate)], marks=[str(tmp_path)], x=[1]),
        executor=executor,
        retries=1,
        retry_backoff_s=0,
        progress=False,
    )
    thread, finished = _run_in_background(s)
    try:
        _wait_for(lambda: s.curves().get("attempt", pd.Series()).tolist() == [2])
    finally:
        gate.touch()
        thread.join()
    assert finished["df"]["attempts"].tolist() == [2]


def reports_on_past_its_timeout(told, x):
    """Reports once, then keeps reporting after its deadline (a thread cannot be stopped)."""
    nbflow.report(step=0, value=1)
    time.sleep(0.3)
    for step in range(1, 4):
        nbflow.report(step=step, value=99)
    told.set()


def test_reports_after_a_points_row_is_final_change_nothing():
    told = threading.Event()
    s = Sweep(
        reports_on_past_its_timeout,
        grid(told=[told], x=[1]),
        executor="threads",
        timeout=0.1,
        progress=False,
    )
    df = s.run()
    assert df["status"].tolist() == ["timeout"]
    assert told.wait(30)  # the abandoned point made its late reports
    assert df.nbflow.curves()["value"].tolist() == [1]
    assert s.curves()["value"].tolist() == [1]


def test_a_sweep_that_never_ran_has_no_curves():
    s = Sweep(lambda lr: lr, {"lr": [1.0]}, progress=False)
    assert s.curves().empty and list(s.curves().columns) == ["lr", "task_id", "step"]


def late_reporter(gate, marks, told, x):
    """Attempt 1 reports, overruns its timeout and goes on reporting; attempt 2 reports once and holds."""
    mark = pathlib.Path(marks) / "first"
    if not mark.exists():
        mark.touch()
        nbflow.report(step=0, v=1)
        time.sleep(0.4)  # past the timeout: abandoned, but a thread goes on
        for step in range(1, 4):
            nbflow.report(step=step, v=99)
        told.set()
        return
    nbflow.report(step=0, v=2)
    while not pathlib.Path(gate).exists():
        time.sleep(0.005)


def test_an_abandoned_attempt_reporting_late_never_enters_the_retrys_curve(tmp_path):
    told = threading.Event()
    gate = tmp_path / "go"
    s = Sweep(
        late_reporter,
        grid(gate=[str(gate)], marks=[str(tmp_path)], told=[told], x=[1]),
        executor="threads",
        timeout=0.1,
        retries=1,
        retry_backoff_s=0,
        progress=False,
    )
    thread, finished = _run_in_background(s)
    try:
        assert told.wait(30)  # attempt 1 made its late reports while attempt 2 ran
        _wait_for(lambda: s.curves().get("v", pd.Series()).tolist() == [2])
    finally:
        gate.touch()
        thread.join()
    assert finished["df"]["attempts"].tolist() == [2]
    assert finished["df"].nbflow.curves()["v"].tolist() == [2]


def holds_then_reports_again(gate, x):
    nbflow.report(step=0, v=x)
    while not pathlib.Path(gate).exists():
        time.sleep(0.005)
    nbflow.report(step=1, v=x)  # after the sweep was cancelled: reported into nothing


def test_after_a_cancel_the_curves_are_the_results_own(tmp_path):
    """A point still running when the sweep was cancelled is a cancelled row: no curve, even as it reports on."""
    gate = tmp_path / "go"
    s = Sweep(holds_then_reports_again, grid(gate=[str(gate)], x=[5]), executor="threads", progress=False)
    thread, finished = _run_in_background(s)
    _wait_for(lambda: len(s.curves()) == 1)
    s.cancel()
    thread.join()
    df = finished["df"]
    assert df["status"].tolist() == ["cancelled"]
    gate.touch()  # the abandoned point reports again
    assert s.curves().equals(df.nbflow.curves()) and s.curves().empty
