"""Stop means stop: Ctrl-C raises a KeyboardInterrupt carrying the partial frame, cancel() returns it,
and a per-point timeout turns a hung point into a ``timeout`` row, on every executor.

Points that must hang wait on ``RELEASE`` (or sleep, in a worker process), so no test depends on
timing: the fast points finish, the hung ones are stopped or abandoned, and the counts are exact.
"""

import functools
import math
import os
import signal
import threading
import time

import pytest

import nbflow
from nbflow import Sweep, grid, sweep

RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _release_hung_points():
    """Whatever a test abandons on a thread is let go at its end, so no thread outlives it."""
    RELEASE.clear()
    yield
    RELEASE.set()


def hang_point(x, k):
    """Points below k return at once; the others hang until released (or stopped).

    In a worker process nothing sets RELEASE: there a hung point only ends when it is stopped.
    """
    if x >= k:
        RELEASE.wait(60)
    return {"y": x * 10}


def hang_from(k):
    return functools.partial(hang_point, k=k)


class Signal:
    """A progress stand-in that, once ``after`` points have finished, calls ``then`` from another thread."""

    def __init__(self, after, then):
        self.after, self.then, self.fired = after, then, None

    def __call__(self, total, desc, unit):
        self.total = total
        self.n = 0
        return self

    def update(self, n):
        self.n += n
        if self.n == self.after and self.fired is None:
            self.fired = threading.Thread(target=self.then)
            self.fired.start()

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass


def _sigint():
    os.kill(os.getpid(), signal.SIGINT)


def _counts(df):
    return df["status"].value_counts().to_dict()


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes", "async"])
def test_stop_ctrl_c_raises_a_keyboard_interrupt_with_the_partial_frame(executor, shutdown_processes):
    """SIGINT after 4 of 10 points: a KeyboardInterrupt (not an Exception) whose .results holds 4 ok, 6 cancelled."""
    if executor == "sequential":
        # One point at a time: the fifth point raises SIGINT itself, in the thread that runs it.
        def target(x):
            if x == 4:
                _sigint()
                time.sleep(5)
            return {"y": x * 10}

        progress = False
    else:
        target = hang_from(4)
        progress = Signal(4, _sigint)
    s = Sweep(target, grid(x=range(10)), executor=executor, progress=progress)
    swallowed = False
    with pytest.raises(KeyboardInterrupt) as info:
        try:
            s.run()
        except Exception:
            swallowed = True
    assert not swallowed
    exc = info.value
    assert isinstance(exc, nbflow.Interrupted)
    assert _counts(exc.results) == {"ok": 4, "cancelled": 6}
    assert exc.results["y"].tolist()[:4] == [0, 10, 20, 30]
    assert s.results.equals(exc.results)
    assert "interrupted" in str(exc) and "6 of 10 points never finished" in str(exc)


@pytest.mark.parametrize("executor", ["threads", "processes", "async"])
def test_stop_cancel_returns_the_partial_frame_promptly_with_a_hung_point(executor, shutdown_processes):
    """50 quick points and one that never returns: cancel() makes run() return in seconds, 50 ok and 1 cancelled."""
    for _ in range(3):  # it used to hang in 2 runs of 3
        s = Sweep(hang_from(50), grid(x=range(51)), executor=executor, progress=None)
        s.progress = Signal(50, s.cancel)
        started = time.monotonic()
        df = s.run()
        assert time.monotonic() - started < 20
        assert _counts(df) == {"ok": 50, "cancelled": 1}
        assert df["y"].tolist()[:50] == [x * 10 for x in range(50)]
        RELEASE.set()
        s.progress.fired.join()
        RELEASE.clear()


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes", "async"])
def test_stop_timeout_makes_a_hung_point_a_timeout_row(executor, shutdown_processes):
    """timeout=1: the hung point is a `timeout` row with its elapsed time; every other point is ok."""
    df = sweep(hang_from(3), {"x": range(3, -1, -1)}, executor=executor, timeout=1, progress=False)
    assert df["status"].tolist() == ["timeout", "ok", "ok", "ok"]
    assert df["y"].tolist()[1:] == [20, 10, 0]
    assert 1 <= df["duration_s"].iloc[0] < 30
    assert "timeout of 1 s" in df["error"].iloc[0]


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes"])
def test_stop_retries_apply_to_timeouts(executor, shutdown_processes):
    """A point that times out is retried like one that raised: attempts counts the tries."""
    df = sweep(
        hang_from(1),
        {"x": [0, 1]},
        executor=executor,
        timeout=0.5,
        retries=1,
        retry_backoff_s=0,
        progress=False,
    )
    assert df["status"].tolist() == ["ok", "timeout"] and df["attempts"].tolist() == [1, 2]


def test_stop_timeout_under_a_retry_that_succeeds_is_ok():
    """A first attempt that times out and a second that returns: the point is ok, after two attempts."""
    tries = []

    def slow_once(x):
        tries.append(x)
        if len(tries) == 1:
            RELEASE.wait(30)
        return x

    df = sweep(
        slow_once, {"x": [1]}, executor="threads", timeout=0.5, retries=2, retry_backoff_s=0, progress=False
    )
    assert df["status"].tolist() == ["ok"] and df["attempts"].tolist() == [2]


def test_stop_failed_includes_timeouts_and_rerun_failed_runs_them_again():
    """failed() lists timeout rows beside error rows; rerun_failed() runs them again."""
    hang = {2}

    def target(x):
        if x in hang:
            RELEASE.wait(30)
        return x

    s = Sweep(target, {"x": [1, 2]}, executor="threads", timeout=0.5, progress=False)
    assert s.run().nbflow.failed()["x"].tolist() == [2]
    hang.clear()
    assert s.rerun_failed()["status"].tolist() == ["ok", "ok"]


@pytest.mark.parametrize("bad", [0, -1, "5", True, math.nan, math.inf])
def test_stop_timeout_that_is_not_a_positive_number_is_refused(bad):
    """timeout=0, -1, '5', True, nan or inf: a clear error naming timeout and the fix, before any point runs."""
    with pytest.raises(ValueError, match=r"timeout=.*positive number of seconds"):
        Sweep(lambda x: x, {"x": [1]}, timeout=bad)


def test_stop_summary_line_says_the_sweep_was_interrupted(monkeypatch):
    """The live table's last line says interrupted and how many points never finished."""
    import nbflow.notebook.live as live_module

    lines = []

    class Live:
        def __init__(self, frame, **kwargs):
            pass

        def show(self):
            pass

        def refresh(self, force=False):
            pass

        def close(self, summary):
            lines.append(summary)

    monkeypatch.setattr(live_module, "in_notebook", lambda: True)
    monkeypatch.setattr(live_module, "LiveTable", Live)

    def target(x):
        if x == 2:
            _sigint()
            time.sleep(5)
        return x

    with pytest.raises(nbflow.Interrupted):
        sweep(target, {"x": range(6)}, executor="sequential", progress=False)
    assert lines == ["target: interrupted: 2 ok; 4 of 6 points never finished"]
