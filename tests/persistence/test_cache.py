"""The result cache on map actions: hits, invalidation by code change, failures, restarts."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from nbflow import ApplicationBuilder, InMemoryPersister, MapStates, ResultCache, action

RUNS = []


@action(reads=["x"], writes=["y"])
def square(state):
    RUNS.append(state["x"])
    return state.update(y=state["x"] ** 2)


@action(reads=["x"], writes=["y"])
def fails_on_odd(state):
    RUNS.append(state["x"])
    if state["x"] % 2:
        raise ValueError("odd")
    return state.update(y=state["x"] ** 2)


class Points(MapStates):
    reads, writes = ["xs"], ["rows"]

    def __init__(self, fn=square, **options):
        super().__init__(**options)
        self.fn = fn

    def action(self):
        return self.fn

    def states(self, state):
        for x in state["xs"]:
            yield state.update(x=x)

    def reduce(self, state, states):
        rows = sorted((s["x"], s.get("y"), s.task.cached, s.task.ok) for s in states)
        return state.update(rows=rows)


@pytest.fixture(autouse=True)
def _clear_runs():
    RUNS.clear()


def _run(xs, cache, fn=square, executor="threads", **options):
    app = (
        ApplicationBuilder()
        .with_actions(points=Points(fn, cache=cache, **options))
        .with_state(xs=xs)
        .with_entrypoint("points")
        .with_executor(executor)
        .build()
    )
    return app.run()[2]["rows"]


def test_cache_second_run_loads_every_point(tmp_path):
    """Running the same points again computes nothing and marks them cached."""
    cache = ResultCache(tmp_path / "cache")
    assert _run([1, 2, 3], cache) == [(1, 1, False, True), (2, 4, False, True), (3, 9, False, True)]
    RUNS.clear()
    assert _run([1, 2, 3], cache) == [(1, 1, True, True), (2, 4, True, True), (3, 9, True, True)]
    assert RUNS == []


def test_cache_computes_only_new_points(tmp_path):
    """Adding points to a cached sweep runs just the new ones."""
    cache = ResultCache(tmp_path / "cache")
    _run([1, 2], cache)
    RUNS.clear()
    rows = _run([1, 2, 3, 4], cache)
    assert sorted(RUNS) == [3, 4] and [r[2] for r in rows] == [True, True, False, False]


def test_cache_failed_points_are_not_cached(tmp_path):
    """A point that failed is computed again on the next run."""
    cache = ResultCache(tmp_path / "cache")
    _run([0, 1, 2, 3], cache, fails_on_odd, on_error="record")
    RUNS.clear()
    _run([0, 1, 2, 3], cache, fails_on_odd, on_error="record")
    assert sorted(RUNS) == [1, 3]


def _notebook_action(body):
    """An action defined the way a notebook cell defines it: in a __main__ namespace."""
    namespace = {"__name__": "__main__", "action": action}
    exec(textwrap.dedent(body), namespace)
    return namespace["compute"]


def test_cache_changed_function_body_invalidates_its_entries(tmp_path):
    """Editing the action's body (as re-running an edited cell does) makes every point run again."""
    cache = ResultCache(tmp_path / "cache")
    v1 = _notebook_action(
        """
        @action(reads=["x"], writes=["y"])
        def compute(state):
            return state.update(y=state["x"] + 1)
        """
    )
    v1_again = _notebook_action(
        """


        @action(reads=["x"], writes=["y"])
        def compute(state):
            return state.update(y=state["x"] + 1)
        """
    )
    v2 = _notebook_action(
        """
        @action(reads=["x"], writes=["y"])
        def compute(state):
            return state.update(y=state["x"] + 2)
        """
    )
    assert [r[1] for r in _run([1, 2], cache, v1)] == [2, 3]
    assert [r[2] for r in _run([1, 2], cache, v1_again)] == [True, True]
    assert [(r[1], r[2]) for r in _run([1, 2], cache, v2)] == [(3, False), (4, False)]


def test_cache_true_uses_a_folder_in_the_working_directory(tmp_path, monkeypatch):
    """cache=True keeps entries in ./.nbflow-cache, next to the notebook."""
    monkeypatch.chdir(tmp_path)
    _run([1], True)
    assert (tmp_path / ".nbflow-cache" / "cache.db").exists()
    assert ResultCache(tmp_path / ".nbflow-cache").summary()["entries"] == 1


def test_cache_clear_and_summary(tmp_path):
    """summary() counts entries and bytes on disk; clear() empties the cache."""
    cache = ResultCache(tmp_path / "cache")
    _run([1, 2, 3], cache)
    summary = cache.summary()
    assert summary["entries"] == 3 and summary["bytes"] > 0
    assert cache.clear() == 3 and cache.summary()["entries"] == 0


def test_cache_in_any_persister(tmp_path):
    """A persister can hold the cache (here in memory)."""
    cache = ResultCache(InMemoryPersister())
    _run([1, 2], cache)
    RUNS.clear()
    _run([1, 2], cache)
    assert RUNS == []


def test_cache_value_it_cannot_store_warns_and_keeps_the_result(tmp_path):
    """A result JSON cannot hold is not cached, with a warning naming the task; the run still has it."""

    @action(reads=["x"], writes=["y"])
    def odd_result(state):
        return state.update(y=object())

    with pytest.warns(UserWarning, match=r"Task 0 of 'points' was not cached"):
        rows = _run([1], ResultCache(tmp_path / "cache"), odd_result)
    assert rows[0][0] == 1 and rows[0][3] is True


def test_cache_works_with_process_executors(tmp_path, shutdown_processes):
    """Cache lookups and stores happen in the parent, so processes hit the same cache."""
    cache = ResultCache(tmp_path / "cache")
    _run([1, 2], cache, executor="processes")
    assert [r[2] for r in _run([1, 2], cache, executor="processes")] == [True, True]


def test_cache_bad_spec_is_refused():
    """cache= with an int says what it accepts."""
    with pytest.raises(TypeError, match=r"cache= takes True"):
        Points(cache=3)


SCRIPT = textwrap.dedent(
    """
    import sys
    from nbflow import ApplicationBuilder, MapStates, action

    def helper(x):
        return x * 3

    @action(reads=["x"], writes=["y"])
    def work(state):
        with open(sys.argv[2], "a") as log:
            log.write(f"{state['x']}\\n")
        return state.update(y=helper(state["x"]))

    class Points(MapStates):
        reads, writes = ["xs"], ["ys"]
        def action(self):
            return work
        def states(self, state):
            for x in state["xs"]:
                yield state.update(x=x)
        def reduce(self, state, states):
            return state.update(ys=sorted(s["y"] for s in states))

    app = (ApplicationBuilder().with_actions(p=Points(cache=sys.argv[1])).with_state(xs=list(range(int(sys.argv[3]))))
           .with_entrypoint("p").build())
    print(app.run()[2]["ys"])
    """
)


def test_cache_survives_a_restart_for_functions_defined_in_main(tmp_path):
    """Two separate interpreters (a kernel restart): the second computes only the points the first did not."""
    script, log = tmp_path / "sweep.py", tmp_path / "runs.log"
    script.write_text(SCRIPT)
    first = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "c"), str(log), "4"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert first.returncode == 0, first.stderr
    second = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "c"), str(log), "6"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == str([3 * x for x in range(6)])
    assert sorted(int(x) for x in log.read_text().split()) == [0, 1, 2, 3, 4, 5]


def test_cache_entries_are_rows_of_their_own_not_saved_steps(tmp_path):
    """A cache keeps one row per key in a table of its own; nothing in it poses as a saved run."""
    import sqlite3

    _run([1, 2], ResultCache(tmp_path / "cache"))
    with sqlite3.connect(tmp_path / "cache" / "cache.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "nbflow_steps" not in tables
        assert db.execute("SELECT COUNT(*) FROM nbflow_cache").fetchone()[0] == 2


def test_cache_damaged_entry_is_an_error_naming_the_file_and_the_fix(tmp_path):
    """An entry whose JSON was damaged on disk is reported with its file and how to recover, not returned."""
    import sqlite3

    from nbflow import PersistenceError

    cache = ResultCache(tmp_path / "cache")
    _run([1], cache)
    with sqlite3.connect(tmp_path / "cache" / "cache.db") as db:
        db.execute("UPDATE nbflow_cache SET written = '{not json'")
    RUNS.clear()  # square reads RUNS: as it was, so that the key is the same
    with pytest.raises(PersistenceError, match=r"cache\.db.*damaged: clear the cache \(cache\.clear\(\)\)"):
        _run([1], cache)


def test_cache_writes_a_batch_in_one_go_and_one_bad_value_costs_only_its_own_entry(tmp_path):
    """put_many stores every storable entry in one transaction and reports the others by position."""
    from nbflow.persistence.cache import CacheFile

    entries = CacheFile(tmp_path / "cache.db")
    failed = entries.put_many([("a", {"y": 1}, "t"), ("b", {"y": object()}, "t"), ("c", {"y": (2, 3)}, "t")])
    assert [position for position, _ in failed] == [1]
    assert entries.get("a") == {"y": 1} and entries.get("b") is None and entries.get("c") == {"y": (2, 3)}
    assert len(entries) == 2


def test_cache_holds_every_finished_point_when_the_run_returns(tmp_path):
    """Results are written in batches, and the last batch is written before run() returns: nothing is left out."""
    from nbflow import Sweep, grid

    cache = ResultCache(tmp_path / "cache")
    Sweep(lambda x: x + 1, grid(x=range(1300)), cache=cache, progress=False).run()
    assert cache.summary()["entries"] == 1300
    again = Sweep(lambda x: x + 1, grid(x=range(1300)), cache=cache, progress=False).run()
    assert (again["status"] == "cached").all() and again["result"].tolist() == list(range(1, 1301))


def _stops_at_700(x):
    if x == 700 and os.environ.get("NBFLOW_TEST_STOP_AT_700"):
        os.kill(os.getpid(), signal.SIGINT)
    return x * 2


def test_cache_keeps_what_finished_before_ctrl_c(tmp_path, monkeypatch):
    """A sweep stopped by Ctrl-C has written its finished points: the next run computes only the rest."""
    import nbflow
    from nbflow import Sweep, grid

    cache = ResultCache(tmp_path / "cache")
    monkeypatch.setenv("NBFLOW_TEST_STOP_AT_700", "1")
    with pytest.raises(nbflow.Interrupted):
        Sweep(_stops_at_700, grid(x=range(1000)), executor="sequential", cache=cache, progress=False).run()
    assert cache.summary()["entries"] == 700
    monkeypatch.delenv("NBFLOW_TEST_STOP_AT_700")
    df = Sweep(_stops_at_700, grid(x=range(1000)), cache=cache, progress=False).run()
    assert (df["result"] == df["x"] * 2).all()
    assert df["status"].value_counts().to_dict() == {"cached": 700, "ok": 300}


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes"])
def test_cache_lookups_in_batches_give_each_point_its_own_result(tmp_path, executor, shutdown_processes):
    """Hits and misses interleaved across the lookup batches: each row has its own point's value and status."""
    from nbflow import Sweep, grid

    cache = ResultCache(tmp_path / "cache")
    Sweep(lambda x: -x, grid(x=range(0, 1200, 3)), cache=cache, progress=False).run()
    df = Sweep(lambda x: -x, grid(x=range(1200)), executor=executor, cache=cache, progress=False).run()
    assert df["x"].tolist() == list(range(1200))
    assert (df["result"] == -df["x"]).all()
    assert df["status"].tolist() == ["cached" if x % 3 == 0 else "ok" for x in range(1200)]


# Events a task sets when it runs; a module global, since the cache key cannot digest a lock.
_RAN: list = []


@action(reads=["x"], writes=["y"])
def _note(state):
    _RAN[state["x"]].set()
    return state.update(y=state["x"] * 10)


class _WaitsForEachResult(MapStates):
    """A tasks() hook that makes the next task only after the last one ran."""

    reads, writes = [], ["rows"]

    def action(self):
        return _note

    def states(self, state):
        for x in range(len(_RAN)):
            if x and not _RAN[x - 1].wait(timeout=20):
                raise TimeoutError(f"task {x - 1} was held back waiting for task {x}")
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(rows=sorted((s["x"], s["y"], s.task.cached) for s in states))


def test_cache_never_holds_back_a_task_whose_hook_waits_for_it_to_run(tmp_path):
    """Tasks are gathered ahead for cache lookups only for grids: a hook that waits on its tasks is not held up.

    Sequential only: on threads joblib itself takes a few tasks ahead before running any.
    """
    import threading

    _RAN[:] = [threading.Event() for _ in range(6)]
    app = (
        ApplicationBuilder()
        .with_actions(points=_WaitsForEachResult(cache=ResultCache(tmp_path / "cache")))
        .with_state()
        .with_entrypoint("points")
        .with_executor("sequential")
        .build()
    )
    assert app.run()[2]["rows"] == [(x, x * 10, False) for x in range(6)]
