"""Sweep: targets, the DataFrame's shape, failures as rows, cancel, cache, progress and provenance."""

import threading
import time

import pytest

from nbflow import (
    ApplicationBuilder,
    GraphBuilder,
    Interrupted,
    ResultTable,
    RunnableGraph,
    State,
    Sweep,
    SweepError,
    TaskFailed,
    action,
    grid,
    sweep,
    to_dataframe,
    zipped,
)


def loss(lr, depth):
    if depth == 3:
        raise ValueError("too deep")
    return {"loss": round((lr - 0.1) ** 2 + depth / 100, 6), "params": lr * depth}


@action(reads=["lr"], writes=["score"])
def score(state):
    return state.update(score=state["lr"] * 10)


class Recorder:
    """A tqdm stand-in that records what the sweep reported."""

    instances = []

    def __init__(self, total, desc, unit):
        self.total, self.desc, self.unit = total, desc, unit
        self.n, self.postfix, self.closed = 0, {}, False
        Recorder.instances.append(self)

    def update(self, n):
        self.n += n

    def set_postfix(self, ordered_dict=None, refresh=True, **values):
        self.postfix = {**(ordered_dict or {}), **values}

    def close(self):
        self.closed = True


def test_sweep_function_rows_have_params_outputs_then_meta_columns(executor_name):
    """A dict result becomes columns; rows come back in point order with status and timings."""
    df = Sweep(loss, grid(lr=[0.01, 0.1], depth=[1, 2]), executor=executor_name, progress=False).run()
    assert list(df.columns) == [
        "lr",
        "depth",
        "loss",
        "params",
        "status",
        "error",
        "attempts",
        "duration_s",
        "task_id",
    ]
    assert df[["lr", "depth", "loss"]].values.tolist() == [
        [0.01, 1, 0.0181],
        [0.01, 2, 0.0281],
        [0.1, 1, 0.01],
        [0.1, 2, 0.02],
    ]
    assert list(df["status"]) == ["ok"] * 4 and list(df["task_id"]) == [0, 1, 2, 3]
    assert (df["duration_s"] >= 0).all() and (df["attempts"] == 1).all()


def test_sweep_failed_points_are_rows_and_the_sweep_goes_on():
    """With on_error='record' (the default) a failing point is an error row with the message."""
    df = sweep(loss, grid(lr=[0.1], depth=[1, 3, 2]), progress=False)
    assert list(df["status"]) == ["ok", "error", "ok"]
    assert df.loc[1, "error"] == "ValueError: too deep"
    assert df["loss"].isna().tolist() == [False, True, False]


def test_sweep_on_error_raise_keeps_finished_rows_on_the_sweep():
    """on_error='raise' raises TaskFailed naming the point; sweep.results keeps what finished."""
    s = Sweep(loss, grid(depth=[3, 1, 2], lr=[0.1]), on_error="raise", executor="sequential", progress=False)
    with pytest.raises(TaskFailed, match=r"depth=3"):
        s.run()
    assert list(s.results["status"]) == ["error", "cancelled", "cancelled"]
    assert s.results.loc[0, "error"] == "ValueError: too deep"


def test_sweep_non_dict_result_goes_in_a_result_column():
    """A scalar result is one `result` column."""
    df = sweep(lambda x: x * x, {"x": [1, 2, 3]}, progress=False)
    assert df["result"].tolist() == [1, 4, 9]


def test_sweep_action_target_gets_params_in_state_and_writes_columns():
    """An action's written keys become the output columns."""
    df = sweep(score, grid(lr=[0.1, 0.2]), progress=False)
    assert df["score"].tolist() == [1.0, 2.0]


def test_sweep_runnable_graph_target_runs_the_whole_sub_graph():
    """A RunnableGraph runs to its halt point per point; every written key is a column."""

    @action(reads=["score"], writes=["grade"])
    def grade(state):
        return state.update(grade="A" if state["score"] > 1.5 else "B")

    graph = GraphBuilder().with_actions(score=score, grade=grade).with_transitions(("score", "grade")).build()
    df = sweep(RunnableGraph(graph, "score", "grade"), grid(lr=[0.1, 0.2]), progress=False)
    assert df[["score", "grade"]].values.tolist() == [[1.0, "B"], [2.0, "A"]]


def test_sweep_zipped_axes_pair_up():
    """zipped() points run pairwise."""
    df = sweep(lambda a, b: a + b, zipped(a=[1, 2, 3], b=[10, 20, 30]), progress=False)
    assert df["result"].tolist() == [11, 22, 33]


def test_sweep_empty_grid_gives_an_empty_frame_with_the_columns():
    """No points is not an error: an empty DataFrame with the parameter and meta columns."""
    df = sweep(loss, grid(lr=[], depth=[1]), progress=False)
    assert len(df) == 0 and {"lr", "depth", "status", "task_id"} <= set(df.columns)


def test_sweep_axis_that_is_not_a_parameter_names_it_and_the_parameters():
    """A typo in an axis name is caught before anything runs."""
    with pytest.raises(
        SweepError, match=r"axis 'lrr' is not a parameter of loss\(\); its parameters are \['lr', 'depth'\]"
    ):
        Sweep(loss, grid(lrr=[1], depth=[1]))


def test_sweep_missing_required_parameter_names_it():
    """A parameter with no default and no axis is named with the fix."""
    with pytest.raises(SweepError, match=r"loss\(\) needs parameter 'depth', which no sweep axis gives"):
        Sweep(loss, grid(lr=[1]))


def test_sweep_progress_counts_points_with_ok_error_cached_postfix():
    """The progress bar counts points (not graph steps) and reports ok/error/cached."""
    Recorder.instances.clear()
    sweep(loss, grid(lr=[0.1], depth=[1, 2, 3]), progress=Recorder)
    bar = Recorder.instances[-1]
    assert (bar.total, bar.n, bar.unit, bar.closed) == (3, 3, "pt", True)
    assert bar.postfix == {"ok": 2, "error": 1, "cached": 0}


def test_sweep_results_are_live_while_it_runs():
    """sweep.results shows the finished rows while later points are still running."""
    gate = threading.Event()

    def slow(x):
        if x == 3:
            assert gate.wait(10)
        return x

    s = Sweep(slow, grid(x=[0, 1, 2, 3]), executor="threads", progress=False)
    seen = []

    def watch():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            df = s.results
            if len(df) == 3:
                seen.append(sorted(df["x"].tolist()))
                gate.set()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    df = s.run()
    watcher.join()
    assert seen == [[0, 1, 2]] and len(df) == 4


def test_sweep_cancel_returns_partial_results_with_cancelled_rows():
    """cancel() mid-sweep returns a DataFrame: finished rows, the rest marked cancelled."""

    def slow(x):
        time.sleep(0.01)
        if x == 5:
            s.cancel()
        return x

    s = Sweep(slow, grid(x=range(200)), executor="sequential", progress=False)
    df = s.run()
    assert len(df) == 200 and list(df["task_id"]) == list(range(200))
    assert set(df["status"]) == {"ok", "cancelled"}
    assert (df["status"] == "ok").sum() == 6


def test_sweep_keyboard_interrupt_raises_with_the_partial_results():
    """Ctrl-C in the middle raises Interrupted, whose .results is the partial DataFrame, nothing lost."""
    import _thread

    def slow(x):
        if x == 3:
            _thread.interrupt_main()
        time.sleep(0.005)
        return x

    with pytest.raises(Interrupted) as info:
        Sweep(slow, grid(x=range(100)), executor="sequential", progress=False).run()
    df = info.value.results
    assert len(df) == 100 and "cancelled" in set(df["status"]) and (df["status"] == "ok").sum() >= 3


def test_sweep_cache_marks_rows_cached_on_a_second_run(tmp_path):
    """With cache=, a re-run loads every point: status 'cached', same values."""
    first = sweep(loss, grid(lr=[0.1], depth=[1, 2]), cache=tmp_path, progress=False)
    second = sweep(loss, grid(lr=[0.1], depth=[1, 2]), cache=tmp_path, progress=False)
    assert list(first["status"]) == ["ok", "ok"] and list(second["status"]) == ["cached", "cached"]
    assert second["loss"].tolist() == first["loss"].tolist()


def test_sweep_retries_count_attempts():
    """retries=N retries a flaky point; the attempts column shows it."""
    calls = {}

    def flaky(x):
        calls[x] = calls.get(x, 0) + 1
        if calls[x] < 2:
            raise ConnectionError("again")
        return x

    df = sweep(flaky, grid(x=[1, 2]), retries=2, retry_backoff_s=0.001, progress=False)
    assert list(df["attempts"]) == [2, 2] and list(df["status"]) == ["ok", "ok"]


def test_sweep_provenance_describes_the_run():
    """df.attrs['nbflow'] holds the axes, target, code hash, executor, times and versions."""
    df = sweep(loss, grid(lr=[0.1, 0.2], depth=[1]), progress=False, executor="sequential")
    prov = df.attrs["nbflow"]
    assert prov["axes"] == {"lr": [0.1, 0.2], "depth": [1]}
    assert prov["target_name"] == "loss" and prov["executor"] == "sequential"
    assert len(prov["code_hash"]) == 32 and prov["started_at"] <= prov["ended_at"]
    assert "pandas" in prov["versions"] and "python" in prov["versions"]


def test_sweep_inside_an_application_writes_its_dataframe():
    """A Sweep is a parallel action: in a graph it writes the DataFrame to its output key."""

    @action(reads=["results"], writes=["best_lr"])
    def pick(state):
        df = state["results"]
        return state.update(best_lr=float(df.loc[df["loss"].idxmin(), "lr"]))

    app = (
        ApplicationBuilder()
        .with_actions(sweep=Sweep(loss, grid(lr=[0.05, 0.1, 0.3], depth=[1]), progress=False), pick=pick)
        .with_transitions(("sweep", "pick"))
        .with_entrypoint("sweep")
        .build()
    )
    assert app.run()[2]["best_lr"] == 0.1


def test_to_dataframe_turns_sub_states_into_rows():
    """to_dataframe() in a map's reduce gives one row per task with its status."""
    from nbflow import MapStates

    class Fan(MapStates):
        reads, writes = ["xs"], ["frame"]

        def action(self):
            return square

        def states(self, state):
            for x in state["xs"]:
                yield state.update(x=x)

        def reduce(self, state, states):
            return state.update(frame=to_dataframe(states))

    @action(reads=["x"], writes=["y"])
    def square(state):
        return state.update(y=state["x"] ** 2)

    app = ApplicationBuilder().with_actions(fan=Fan()).with_state(xs=[1, 2]).with_entrypoint("fan").build()
    frame = app.run()[2]["frame"].sort_values("task_id")
    assert frame[["x", "y", "status"]].values.tolist() == [[1, 1, "ok"], [2, 4, "ok"]]
    assert to_dataframe([State(a=1)])["a"].tolist() == [1]


def test_result_table_compacts_in_chunks_and_backfills_new_columns():
    """Rows beyond a chunk are compacted; an output first seen late is None for earlier rows."""
    table = ResultTable(["x"], chunk=2)
    table.add({"x": 1}, {"a": 1}, status="ok", task_id=0)
    table.add({"x": 2}, {"a": 2}, status="ok", task_id=1)
    table.add({"x": 3}, {"a": 3, "b": "late"}, status="ok", task_id=2)
    frame = table.frame()
    assert frame["b"].isna().tolist() == [True, True, False]
    assert frame["b"].tolist()[2] == "late" and len(table) == 3


def test_sweep_rerun_failed_runs_only_the_failed_points():
    """rerun_failed() re-runs error rows only and puts their new results in place."""
    calls = []
    broken = {"on": True}

    def flaky(x):
        calls.append(x)
        if broken["on"] and x % 2:
            raise RuntimeError("flaky")
        return {"y": x * 10}

    s = Sweep(flaky, grid(x=range(6)), progress=False, executor="sequential")
    first = s.run()
    assert list(first["status"]) == ["ok", "error"] * 3
    broken["on"] = False
    calls.clear()
    again = s.rerun_failed()
    assert sorted(calls) == [1, 3, 5]
    assert list(again["status"]) == ["ok"] * 6 and again["y"].tolist() == [0, 10, 20, 30, 40, 50]
    assert list(again["task_id"]) == list(range(6)) and s.results is again
