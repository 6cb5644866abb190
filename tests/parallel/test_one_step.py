"""A one-action task with nothing persisting or tracking it runs as one step, without a sub-application.

That shortcut must give exactly what the full sub-application gives: the same rows, statuses,
errors, attempts and cached values, on every executor that runs tasks in this process or ships
them. A tracker on the sweep forces the full path, so the two can be run over the same points.
"""

from __future__ import annotations

import pathlib

import pytest

from nbflow import ApplicationBuilder, LocalTracker, MapStates, Sweep, action, grid
from nbflow.core.actions import ApplicationContext
from nbflow.core.application import Application
from nbflow.core.state import State
from nbflow.parallel import tasks
from nbflow.parallel.tasks import as_runnable, run_task

_COMPARED = ["x", "tag", "result", "status", "error", "attempts", "task_id"]


def flaky(x, tag, marks):
    """Fails its first attempt when x % 3 == 0 (a file marks the attempt), always when x % 5 == 4."""
    if x % 5 == 4:
        raise ValueError(f"bad point {x}")
    mark = pathlib.Path(marks) / f"{tag}-{x}"
    if x % 3 == 0 and not mark.exists():
        mark.touch()
        raise RuntimeError(f"first try of {x}")
    return {"y": x * 10, "half": x / 2}


def _sweep(executor, tmp_path, label, tracked):
    marks = tmp_path / f"marks-{label}"
    marks.mkdir(exist_ok=True)
    sweep = Sweep(
        flaky,
        grid(x=range(12), tag=[label], marks=[str(marks)]),
        executor=executor,
        retries=1,
        retry_backoff_s=0.0,
        cache=str(tmp_path / f"cache-{label}"),
        progress=False,
        live=False,
    )
    if tracked:
        sweep.tracker = LocalTracker("full-path", storage_dir=str(tmp_path / f"tracker-{label}"))
    return sweep


def _rows(frame):
    frame = frame.drop(columns=["marks", "duration_s"]).sort_values("task_id").reset_index(drop=True)
    return frame.assign(tag="t").astype(object).where(frame.notna(), None).to_dict("records")


def test_the_one_step_path_and_the_full_path_give_the_same_frames_with_failures_retries_and_cache(
    executor_name, tmp_path
):
    """Fresh and cached runs agree row for row: ok, retried-then-ok, error, and then cached rows."""
    frames = {}
    for label, tracked in (("fast", False), ("full", True)):
        first = _sweep(executor_name, tmp_path, label, tracked).run()
        again = _sweep(executor_name, tmp_path, label, tracked).run()
        frames[label] = (_rows(first), _rows(again))
    fast, full = frames["fast"], frames["full"]
    assert fast == full
    first = {row["x"]: row for row in fast[0]}
    assert first[3]["status"] == "ok" and first[3]["attempts"] == 2
    assert first[4]["status"] == "error" and "bad point 4" in first[4]["error"]
    assert first[4]["attempts"] == 2
    assert first[2]["y"] == 20 and first[2]["attempts"] == 1
    again = {row["x"]: row for row in fast[1]}
    assert again[2]["status"] == "cached" and again[2]["y"] == 20
    assert again[4]["status"] == "error"


@pytest.fixture
def one_steps(monkeypatch):
    """The actions of the one-step tasks made in this process, in order."""
    made = []
    real = tasks._OneStep.__init__

    def counting(self, *args):
        made.append(args[0].name)
        real(self, *args)

    monkeypatch.setattr(tasks._OneStep, "__init__", counting)
    return made


def test_a_sweep_without_tracker_takes_the_one_step_path_and_a_tracked_one_does_not(tmp_path, one_steps):
    """The shortcut is really taken when nothing watches, and never when a tracker must see each step."""
    made = one_steps
    _sweep("sequential", tmp_path, "fast", tracked=False).run()
    # Twelve points, and a second try for each that failed: 0, 3 and 6 once, 4 and 9 always.
    assert len(made) == 12 + 5
    made.clear()
    _sweep("sequential", tmp_path, "full", tracked=True).run()
    assert made == []


@action(reads=["x"], writes=["y"])
def needs_context(state, __context):
    return state.update(y=(__context.app_id, __context.sequence_id, __context.parent_app_id))


def test_an_action_sees_the_same_context_on_the_one_step_path_as_in_a_sub_application():
    """app_id, sequence_id, parent ids, partition key and executor are those the sub-application would give."""
    graph = as_runnable(needs_context, "test")
    parent = ApplicationContext("parent", partition_key="p", sequence_id=7, executor="ex")
    short = run_task(graph, State(x=1), {}, "task-1", 0, parent)
    app = Application(
        graph.graph, State(x=1), "needs_context", app_id="task-1", partition_key="p", parent=parent
    )
    full = app.run(halt_after=["needs_context"])[2]
    assert short.state["y"] == full["y"] == ("task-1", 0, "parent")


@action(reads=["x"], writes=["y"])
def breaks(state):
    raise KeyError("nope")


def test_a_failing_one_step_task_keeps_the_state_from_before_its_step():
    """As with a sub-application, the failed task's state is its starting state, and the error is kept."""
    outcome = run_task(as_runnable(breaks, "test"), State(x=1), {}, "t", 0, ApplicationContext("p"))
    assert isinstance(outcome.error, KeyError)
    assert outcome.state.get("y") is None and outcome.state["x"] == 1


class Doubles(MapStates):
    reads, writes = ["n"], ["ys"]

    def action(self):
        return double

    def states(self, state):
        for i in range(state["n"]):
            yield state.update(x=i)

    def reduce(self, state, states):
        return state.update(ys=sorted(s["y"] for s in states))


@action(reads=["x"], writes=["y"])
def double(state):
    return state.update(y=state["x"] * 2)


def test_a_map_of_one_action_gives_the_same_result_tracked_or_not(tmp_path):
    """Burr's common MapStates over one action: untracked (one step each) and tracked agree."""
    results = []
    for tracker in (None, LocalTracker("m", storage_dir=str(tmp_path))):
        builder = ApplicationBuilder().with_actions(m=Doubles()).with_state(n=50).with_entrypoint("m")
        if tracker is not None:
            builder = builder.with_tracker(tracker)
        results.append(builder.build().run()[2]["ys"])
    assert results[0] == results[1] == [2 * i for i in range(50)]


async def aflaky(x, tag, marks):
    """`flaky`, as a coroutine function."""
    return flaky(x, tag, marks)


def test_an_async_target_takes_the_one_step_path_with_the_same_rows(executor_name, tmp_path, one_steps):
    """An async function is one step too, awaited: same rows as the tracked full path, on every executor."""
    made = one_steps
    frames = []
    for label, tracked in (("fast", False), ("full", True)):
        marks = tmp_path / f"marks-{label}"
        marks.mkdir()
        sweep = Sweep(
            aflaky,
            grid(x=range(12), tag=[label], marks=[str(marks)]),
            executor=executor_name,
            retries=1,
            retry_backoff_s=0.0,
            progress=False,
            live=False,
        )
        if tracked:
            sweep.tracker = LocalTracker("full-path", storage_dir=str(tmp_path / "tracker"))
        frames.append(_rows(sweep.run()))
    assert frames[0] == frames[1]
    assert {row["x"]: row["y"] for row in frames[0] if row["status"] == "ok"} == {
        x: x * 10 for x in range(12) if x % 5 != 4
    }
    if executor_name != "processes":  # there the steps are made in the workers
        assert len(made) == 12 + 5
