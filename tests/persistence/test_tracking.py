"""LocalTracker: one record per step, sub-applications linked, history and state_at."""

import pytest

from nbflow import ApplicationBuilder, MapStates, NotRecordedError, action, expr
from nbflow.persistence import LocalTracker, history, state_at


@action(reads=["count"], writes=["count", "log"])
def count_up(state, step=1):
    return state.update(count=state["count"] + step).append(log=state["count"])


@action(reads=["count"], writes=["temp"])
def boom(state):
    raise ValueError("bad value")


@action(reads=["x"], writes=["y"])
def square(state):
    return state.update(y=state["x"] ** 2)


class Squares(MapStates):
    reads, writes = ["n"], ["total"]

    def action(self):
        return square

    def states(self, state):
        for x in range(state["n"]):
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(total=sum(s["y"] for s in states))


@pytest.fixture
def tracker(tmp_path):
    """A tracker writing to a real SQLite file in the test's folder."""
    return LocalTracker("tests", storage_dir=tmp_path)


def _loop(tracker, app_id="loop"):
    return (
        ApplicationBuilder()
        .with_actions(count_up=count_up)
        .with_transitions(("count_up", "count_up", expr("count < 3")))
        .with_state(count=0)
        .with_entrypoint("count_up")
        .with_tracker(tracker)
        .with_identifiers(app_id=app_id)
        .build()
    )


def test_tracker_records_one_row_per_step_with_what_it_wrote(tracker):
    """Each step's action, inputs, written keys and timing are recorded, in order."""
    _loop(tracker).run(inputs={"step": 1})
    steps = tracker.steps("loop")
    assert [s["action"] for s in steps] == ["count_up"] * 3
    assert [s["written"]["count"] for s in steps] == [1, 2, 3]
    assert steps[2]["written"]["log"] == [0, 1, 2]
    assert steps[0]["inputs"] == {"step": 1}
    assert all(s["ended_at"] >= s["started_at"] for s in steps)


def test_tracker_history_is_a_dataframe_of_steps(tracker):
    """history() returns one row per step with datetimes and durations."""
    _loop(tracker).run()
    frame = history("loop", tracker)
    assert list(frame["sequence_id"]) == [0, 1, 2]
    assert str(frame["started_at"].dtype).startswith("datetime64")
    assert (frame["duration_s"] >= 0).all()


def test_tracker_state_at_rebuilds_the_state_after_any_step(tracker):
    """state_at() replays the recorded writes on the recorded starting state."""
    _loop(tracker).run()
    assert state_at("loop", 0, tracker) == {"count": 1, "log": [0]}
    assert state_at("loop", 2, tracker) == {"count": 3, "log": [0, 1, 2]}


def test_tracker_state_at_an_unrecorded_step_lists_the_recorded_ones(tracker):
    """Asking for a step that was not recorded names the steps that were."""
    _loop(tracker).run()
    with pytest.raises(NotRecordedError, match=r"no recorded step 7\. Recorded steps: \[0, 1, 2\]"):
        state_at("loop", 7, tracker)
    with pytest.raises(NotRecordedError, match=r"no application 'nope'"):
        state_at("nope", 0, tracker)


def test_tracker_records_the_exception_of_a_failed_step(tracker):
    """A failing step is recorded with its exception, and the run's earlier steps are kept."""
    app = (
        ApplicationBuilder()
        .with_actions(count_up=count_up, boom=boom)
        .with_transitions(("count_up", "boom"))
        .with_state(count=0)
        .with_entrypoint("count_up")
        .with_tracker(tracker)
        .with_identifiers(app_id="fails")
        .build()
    )
    with pytest.raises(ValueError):
        app.run()
    steps = tracker.steps("fails")
    assert [s["action"] for s in steps] == ["count_up", "boom"]
    assert steps[1]["exception"] == "ValueError: bad value"
    # The full traceback is kept beside the one-line summary (with the note naming the step).
    assert steps[1]["traceback"].startswith("Traceback (most recent call last)")
    assert "\nValueError: bad value\nnbflow: raised in action 'boom'" in steps[1]["traceback"]
    assert steps[0]["traceback"] is None


def test_tracker_links_sub_applications_to_their_parent(tracker):
    """Each task of a map is a tracked sub-application pointing at the step that started it."""
    app = (
        ApplicationBuilder()
        .with_actions(squares=Squares())
        .with_state(n=5)
        .with_entrypoint("squares")
        .with_tracker(tracker)
        .with_identifiers(app_id="parent")
        .build()
    )
    assert app.run()[2]["total"] == 30
    children = tracker.app_ids("parent")
    assert len(children) == 5
    info = tracker.app(children[0])
    assert (info["parent_app_id"], info["parent_sequence_id"]) == ("parent", 0)
    frame = history("parent", tracker, include_children=True)
    assert sorted(frame["action"]) == ["square"] * 5 + ["squares"]


def test_tracker_keeps_unserializable_values_as_their_repr(tracker):
    """A value JSON cannot hold is recorded as its repr instead of failing the run."""

    @action(reads=[], writes=["thing"])
    def make(state):
        return state.update(thing=object())

    app = (
        ApplicationBuilder()
        .with_actions(make=make)
        .with_entrypoint("make")
        .with_tracker(tracker)
        .with_identifiers(app_id="odd")
        .build()
    )
    app.run()
    assert tracker.steps("odd")[0]["written"]["thing"]["__repr__"].startswith("<object object")


def test_tracker_is_picklable_and_keeps_its_file(tracker):
    """A tracker crossing to a worker process writes to the same file."""
    import pickle

    copy = pickle.loads(pickle.dumps(tracker))
    assert copy.path == tracker.path


def test_tracker_project_name_must_be_a_file_name(tmp_path):
    """A project with a slash is refused with an example."""
    with pytest.raises(ValueError, match=r"plain name"):
        LocalTracker("a/b", storage_dir=tmp_path)


def test_tracker_follows_a_runnable_graph_used_as_an_action(tracker):
    """A RunnableGraph in with_actions runs as a tracked sub-application of its step."""
    from nbflow import GraphBuilder, RunnableGraph

    sub = RunnableGraph(GraphBuilder().with_actions(square=square).build(), "square", "square", name="inner")
    app = (
        ApplicationBuilder()
        .with_actions(sub=sub)
        .with_state(x=3)
        .with_entrypoint("sub")
        .with_tracker(tracker)
        .with_identifiers(app_id="outer")
        .build()
    )
    assert app.run()[2]["y"] == 9
    (child,) = tracker.app_ids("outer")
    assert [s["action"] for s in tracker.steps(child)] == ["square"]


class _Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no str")


@pytest.mark.parametrize(
    ("error", "summary"),
    [(ValueError("split\x00here"), "ValueError: splithere"), (_Unprintable(), "_Unprintable: <unprintable")],
)
def test_tracker_keeps_an_odd_exceptions_summary_whole(tracker, error, summary):
    """A NUL in the message does not split it, and an exception whose __str__ fails is still recorded."""

    @action(reads=["count"], writes=["count"])
    def raises(state):
        raise error

    app = (
        ApplicationBuilder()
        .with_actions(raises=raises)
        .with_state(count=0)
        .with_entrypoint("raises")
        .with_tracker(tracker)
        .with_identifiers(app_id="odd")
        .build()
    )
    with pytest.raises(type(error)):
        app.run()
    (step,) = tracker.steps("odd")
    assert step["exception"].startswith(summary)
    assert step["traceback"].startswith("Traceback (most recent call last)")
