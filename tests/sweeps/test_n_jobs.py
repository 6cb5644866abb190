"""Sweep(n_jobs=N): how many points run at once, on whichever executor is named; a bad value is refused first."""

from __future__ import annotations

import threading

import pytest

from nbflow import MultiThreadedExecutor, Sweep, sweep


def _peak_running(executor, n_jobs, points=9):
    """Runs points that wait for each other in threes, and returns the most that ran at once."""
    lock = threading.Lock()
    running, peak = [0], [0]
    barrier = threading.Barrier(min(3, n_jobs))

    def point(x):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            barrier.wait(timeout=20)
        finally:
            with lock:
                running[0] -= 1
        return x

    df = sweep(point, {"x": list(range(points))}, executor=executor, n_jobs=n_jobs, progress=False)
    assert df["status"].tolist() == ["ok"] * points
    return peak[0]


@pytest.mark.parametrize("executor", ["threads", "async"])
def test_n_jobs_caps_how_many_points_run_at_once(executor):
    assert _peak_running(executor, 3) == 3
    assert _peak_running(executor, 1) == 1


def test_n_jobs_sets_the_named_executors_concurrency_and_the_provenance_shows_it(shutdown_processes):
    s = Sweep(lambda x: x, {"x": [1, 2]}, executor="processes", n_jobs=2, progress=False)
    assert s.executor.max_concurrency == 2
    assert "max_concurrency=2" in s.run().attrs["nbflow"]["executor_config"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4"])
def test_n_jobs_that_is_not_a_positive_int_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match=r"n_jobs=\.\.\.\) takes a positive int"):
        Sweep(lambda x: x, {"x": [1]}, n_jobs=bad)


def test_n_jobs_with_the_sequential_executor_or_an_executor_already_made_says_what_to_do():
    with pytest.raises(ValueError, match=r"one point at a time.*executor='threads'"):
        Sweep(lambda x: x, {"x": [1]}, executor="sequential", n_jobs=4)
    assert Sweep(lambda x: x, {"x": [1]}, executor="sequential", n_jobs=1, progress=False).run()[
        "result"
    ].tolist() == [1]
    with pytest.raises(ValueError, match=r"made already.*max_concurrency.*executor's name"):
        Sweep(lambda x: x, {"x": [1]}, executor=MultiThreadedExecutor(2), n_jobs=4)


def test_n_jobs_without_a_named_executor_is_refused_rather_than_guessed():
    """executor=None means the application's executor: n_jobs cannot silently pick threads instead."""
    with pytest.raises(
        ValueError, match=r"executor=None, n_jobs=2\): n_jobs applies to the executor named here"
    ):
        Sweep(lambda x: x, {"x": [1]}, executor=None, n_jobs=2)
