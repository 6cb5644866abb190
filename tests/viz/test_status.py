"""StatusTracker: step statuses, task counts of parallel steps, and the colours and counts drawings show."""

import pickle
import re
import threading
import time

import pytest

from nbflow import (
    ApplicationBuilder,
    LifecycleHook,
    MapStates,
    RunConcurrent,
    Sweep,
    TaskFailed,
    action,
    default,
    expr,
    grid,
)
from nbflow.viz import (
    STATUS_COLOURS,
    ActionStatus,
    StatusTracker,
    attach_tracker,
    attached_tracker,
    visualize,
)


@action(reads=["n"], writes=["n"])
def tick(state):
    return state.update(n=state["n"] + 1)


@action(reads=["n"], writes=["n"])
def boom(state):
    raise ValueError("boom")


@action(reads=["n"], writes=["done"])
def stop(state):
    return state.update(done=True)


def _fill(source, node):
    """The fill colour the DOT source gives ``node``, or None."""
    found = re.search(rf'^\t{node} \[label=.*?fillcolor="?([#\w]+)', source, re.MULTILINE)
    return found.group(1) if found else None


class Train(MapStates):
    """One task per lr in `lrs`; an lr in `failing` raises; `seen` gets the step's progress as each task starts."""

    reads, writes = ["lrs"], ["losses"]

    def __init__(self, seen, failing=(), **options):
        super().__init__(**options)
        self.seen = seen
        self.failing = set(failing)
        self.watch = None  # (tracker, app id), set once the application is built

    def action(self):
        @action(reads=["lr"], writes=["loss"])
        def fit(state):
            tracker, app_id = self.watch
            self.seen.append(tracker.snapshot(app_id)["train"].progress())
            if state["lr"] in self.failing:
                raise ValueError(f"lr={state['lr']} diverged")
            return state.update(loss=state["lr"] ** 2)

        return fit

    def states(self, state):
        for lr in state["lrs"]:
            yield state.update(lr=lr)

    def reduce(self, state, states):
        return state.update(losses=[s.get("loss") for s in states])


def _map_app(train, tracker, executor="sequential", lrs=(1, 2, 3, 4, 5)):
    app = (
        ApplicationBuilder()
        .with_actions(train=train, stop=stop)
        .with_transitions(("train", "stop"))
        .with_state(lrs=list(lrs), n=0)
        .with_entrypoint("train")
        .with_executor(executor)
        .with_tracker(tracker)
        .build()
    )
    app.graph["train"].watch = (tracker, app.app_id)
    return app


def test_status_tracker_marks_steps_done_and_failed_and_drawings_colour_them():
    """A finished step is done, a raising one failed, one never reached pending; each has its colour."""
    tracker = StatusTracker()
    app = (
        ApplicationBuilder()
        .with_actions(tick=tick, boom=boom, stop=stop)
        .with_transitions(("tick", "boom"), ("boom", "stop"))
        .with_state(n=0)
        .with_entrypoint("tick")
        .with_tracker(tracker)
        .build()
    )
    with pytest.raises(ValueError, match="boom"):
        app.run(halt_after=["stop"])
    statuses = {name: s.status for name, s in tracker.snapshot(app.app_id).items()}
    assert statuses == {"tick": "done", "boom": "failed"}
    source = app.visualize().source
    assert _fill(source, "tick") == STATUS_COLOURS["done"]
    assert _fill(source, "boom") == STATUS_COLOURS["failed"]
    assert _fill(source, "stop") == STATUS_COLOURS["pending"]


def test_status_tracker_shows_the_running_step_while_it_runs():
    """During a step, its node is drawn running (bold) while earlier ones are done and later ones pending."""
    drawn = []

    @action(reads=["n"], writes=["n"])
    def look(state):
        drawn.append(app.visualize().source)
        return state

    app = (
        ApplicationBuilder()
        .with_actions(tick=tick, look=look, stop=stop)
        .with_transitions(("tick", "look"), ("look", "stop"))
        .with_state(n=0)
        .with_entrypoint("tick")
        .with_tracker(StatusTracker())
        .build()
    )
    app.run(halt_after=["stop"])
    (source,) = drawn
    assert _fill(source, "tick") == STATUS_COLOURS["done"]
    assert _fill(source, "look") == STATUS_COLOURS["running"] and "penwidth=2" in source
    assert _fill(source, "stop") == STATUS_COLOURS["pending"]


def test_status_tracker_counts_map_tasks_as_they_finish_with_an_unknown_total():
    """A map's lazily made tasks count up as done/? with failures noted; at the end the total is known."""
    seen, tracker = [], StatusTracker()
    app = _map_app(Train(seen, failing={2, 4}, on_error="record"), tracker)
    app.run(halt_after=["stop"])
    assert seen == ["0/?", "1/?", "2/? (1 failed)", "3/? (1 failed)", "4/? (2 failed)"]
    final = tracker.snapshot(app.app_id)["train"]
    assert (final.status, final.done, final.failed, final.total) == ("done", 3, 2, 5)
    assert 'train [label="train 5/5 (2 failed)"' in app.visualize().source


def test_status_tracker_sweep_knows_its_total_up_front():
    """A Sweep's total is its grid's size from the start: a drawing mid-way reads `train 37/50 (2 failed)`."""
    drawn = {}

    def loss(lr):
        finished = len(drawn)
        drawn[finished] = app.visualize().source
        if lr in (3, 20):
            raise ValueError("diverged")
        return {"loss": lr**2}

    sweep = Sweep(loss, grid(lr=list(range(50))), executor="sequential", progress=False, name="train")
    app = (
        ApplicationBuilder()
        .with_actions(train=sweep)
        .with_entrypoint("train")
        .with_tracker(StatusTracker())
        .build()
    )
    app.run()
    assert 'train [label="train 0/50"' in drawn[0]
    assert 'train [label="train 37/50 (2 failed)"' in drawn[37]
    assert _fill(drawn[37], "train") == STATUS_COLOURS["running"]
    source = app.visualize().source
    assert (
        'train [label="train 50/50 (2 failed)"' in source and _fill(source, "train") == STATUS_COLOURS["done"]
    )


def test_status_tracker_failed_map_step_keeps_the_counts_it_saw():
    """With on_error='raise' the step fails at the first failure; the node is failed with its counts so far."""
    seen, tracker = [], StatusTracker()
    app = _map_app(Train(seen, failing={3}), tracker)
    with pytest.raises(TaskFailed):
        app.run(halt_after=["stop"])
    source = app.visualize().source
    assert (
        'train [label="train 3/? (1 failed)"' in source and _fill(source, "train") == STATUS_COLOURS["failed"]
    )


def test_status_tracker_counts_a_retried_task_once_by_its_last_attempt():
    """A task that fails and then succeeds on retry counts as done, not failed."""
    attempts = []

    class Flaky(Train):
        def action(self):
            @action(reads=["lr"], writes=["loss"])
            def fit(state):
                attempts.append(state["lr"])
                if state["lr"] == 2 and attempts.count(2) == 1:
                    raise ValueError("flaky")
                return state.update(loss=state["lr"])

            return fit

    tracker = StatusTracker()
    app = _map_app(Flaky([], retries=1, retry_backoff_s=0.0), tracker, lrs=(1, 2, 3))
    app.run(halt_after=["stop"])
    assert attempts == [1, 2, 2, 3]
    assert tracker.snapshot(app.app_id)["train"].progress() == "3/3"


def test_status_tracker_counts_only_the_latest_pass_of_a_map_in_a_loop():
    """A map run twice in a loop shows the counts of its latest step, not the sum of both."""
    tracker = StatusTracker()
    train = Train([], on_error="record")
    app = (
        ApplicationBuilder()
        .with_actions(train=train, tick=tick)
        .with_transitions(("train", "tick"), ("tick", "train", expr("n < 2")))
        .with_state(lrs=[1, 2], n=0)
        .with_entrypoint("train")
        .with_executor("sequential")
        .with_tracker(tracker)
        .build()
    )
    app.graph["train"].watch = (tracker, app.app_id)
    app.run(halt_after=["tick"])
    app.run(halt_after=["tick"])
    final = tracker.snapshot(app.app_id)["train"]
    assert (final.sequence_id, final.progress()) == (2, "2/2")


@action(reads=["lr"], writes=["loss"])
def square_unless_two(state):
    if state["lr"] == 2:
        raise ValueError("lr=2 diverged")
    return state.update(loss=state["lr"] ** 2)


class Squares(MapStates):
    reads, writes = ["lrs"], ["losses"]

    def action(self):
        return square_unless_two

    def states(self, state):
        for lr in state["lrs"]:
            yield state.update(lr=lr)

    def reduce(self, state, states):
        return state.update(losses=sorted(s["loss"] for s in states if s.task.ok))


def test_status_tracker_counts_tasks_on_every_executor(executor_name):
    """The step counts its tasks as their results come in, so worker processes count as threads do."""
    tracker = StatusTracker()
    app = (
        ApplicationBuilder()
        .with_actions(train=Squares(on_error="record"))
        .with_state(lrs=[1, 2, 3, 4])
        .with_entrypoint("train")
        .with_executor(executor_name)
        .with_tracker(tracker)
        .build()
    )
    assert app.run()[2]["losses"] == [1, 9, 16]
    final = tracker.snapshot(app.app_id)["train"]
    assert (final.status, final.progress()) == ("done", "4/4 (1 failed)")


def test_status_tracker_run_concurrent_total_is_its_items():
    """RunConcurrent's total is its number of items, known before any branch finishes."""
    seen = []
    tracker = StatusTracker()

    @action(reads=["n"], writes=["done"])
    def peek(state):
        seen.append(tracker.snapshot(app.app_id)["both"].progress())
        return state.update(done=True)

    both = RunConcurrent("both", items=[tick, peek])
    app = (
        ApplicationBuilder()
        .with_actions(both=both)
        .with_state(n=0)
        .with_entrypoint("both")
        .with_executor("sequential")
        .with_tracker(tracker)
        .build()
    )
    app.run()
    assert seen == ["1/2"] and tracker.snapshot(app.app_id)["both"].progress() == "2/2"


class Recorder(LifecycleHook):
    def __init__(self):
        self.runs = []

    def post_run(self, *, app, **kwargs):
        self.runs.append(app.parent.action_name if app.parent else None)


def test_attach_tracker_after_build_cascades_beside_the_existing_tracker_and_detaches():
    """A tracker attached to a built application hears its sub-applications too; detaching restores it."""
    recorder, tracker = Recorder(), StatusTracker()
    app = _map_app(Train([], on_error="record"), recorder, lrs=(1, 2))
    hooks_before = list(app.hooks)
    detach = attach_tracker(app, tracker)
    app.graph["train"].watch = (tracker, app.app_id)
    app.run(halt_after=["stop"])
    assert recorder.runs == ["train", "train", None]
    assert tracker.snapshot(app.app_id)["train"].progress() == "2/2"
    assert attached_tracker(app) is tracker
    detach()
    assert app.hooks == hooks_before and app.tracker is recorder and attached_tracker(app) is None


def test_status_tracker_pickles_as_a_hook_that_does_nothing():
    """A copy sent to another process is a plain LifecycleHook, so it cannot fail or mislead there."""
    copy = pickle.loads(pickle.dumps(StatusTracker(on_change=print)))
    assert type(copy) is LifecycleHook


def test_action_status_progress_reads_like_a_counter():
    """progress() is finished/total, with failures in brackets and ? for what is unknown."""
    assert ActionStatus("running", 0, True, done=35, failed=2, total=50).progress() == "37/50 (2 failed)"
    assert ActionStatus("running", 0, True, done=3).progress() == "3/?"


def test_status_tracker_reports_each_event_to_its_listener():
    """on_change hears every event with the application it concerns, sub-applications included."""
    heard = []
    tracker = StatusTracker(
        on_change=lambda event, app: heard.append((event, app.parent is None if app is not None else None))
    )
    app = _map_app(Train([], on_error="record"), tracker, lrs=(1,))
    app.run(halt_after=["train"])
    # The step's own counts (the last task made, a task finished) come from its driver, with no app.
    counts = [e for e in heard if e[1] is None]
    assert sorted(counts) == [("task_finished", None), ("tasks_known", None)]
    assert [e for e in heard if e[1] is not None] == [
        ("pre_run", True),
        ("pre_step", True),
        ("pre_run", False),
        ("post_run", False),
        ("post_step", True),
        ("post_run", True),
    ]


def test_visualize_without_a_status_tracker_has_no_status_colours():
    """Without a StatusTracker attached, a drawing has no status colours."""
    app = (
        ApplicationBuilder()
        .with_actions(tick=tick, stop=stop)
        .with_transitions(("tick", "stop", default))
        .with_state(n=0)
        .with_entrypoint("tick")
        .build()
    )
    app.run(halt_after=["stop"])
    assert "fillcolor" not in app.visualize().source


@action(reads=["k", "gate"], writes=["k2"])
def waits_unless_done(state):
    """Task 0 holds until the gate file exists; the others finish at once."""
    import pathlib
    import time

    while state["k"] == 0 and not pathlib.Path(state["gate"]).exists():
        time.sleep(0.01)
    if state["k"] == 5:
        raise ValueError("task 5 fails")
    return state.update(k2=state["k"] ** 2)


class Six(MapStates):
    """Six tasks from a generator: the total is unknown until the last one is made."""

    reads, writes = ["gate"], ["squares"]
    on_error = "record"

    def action(self):
        return waits_unless_done

    def states(self, state):
        for k in range(6):
            yield state.update(k=k)

    def reduce(self, state, states):
        return state.update(squares=sorted(s["k2"] for s in states if s.task.ok))


@pytest.mark.parametrize(
    "executor_named",
    [
        "threads",
        "processes",
        pytest.param("dask", marks=pytest.mark.cluster),
        pytest.param("ray", marks=pytest.mark.cluster),
    ],
    indirect=True,
)
def test_a_running_steps_total_and_counts_are_known_before_it_ends_on_every_executor(
    executor_named, tmp_path
):
    """cv 4/6 (1 failed) while task 0 still runs, not 1/?: counted by the step, from any executor."""
    gate = tmp_path / "go"
    tracker = StatusTracker()
    app = (
        ApplicationBuilder()
        .with_actions(cv=Six())
        .with_state(gate=str(gate))
        .with_entrypoint("cv")
        .with_executor(executor_named)
        .with_tracker(tracker)
        .build()
    )
    done = {}
    runner = threading.Thread(target=lambda: done.setdefault("state", app.run()[2]))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while (seen := tracker.snapshot(app.app_id).get("cv")) is None or seen.progress() != "5/6 (1 failed)":
            assert time.monotonic() < deadline, f"the counts never reached 5/6 while task 0 ran: {seen}"
            time.sleep(0.01)
        assert seen.status == "running"
        drawing = visualize(app, status=tracker.snapshot(app.app_id)).source
        assert "cv 5/6 (1 failed)" in drawing
        assert 'fillcolor="#fff8e1"' in drawing and 'color="#cc0000"' in drawing  # the tasks' cluster
    finally:
        gate.touch()
        runner.join()
    assert done["state"]["squares"] == [0, 1, 4, 9, 16]
    assert tracker.snapshot(app.app_id)["cv"].progress() == "6/6 (1 failed)"
