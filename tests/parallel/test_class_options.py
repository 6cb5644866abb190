"""Options declared on a parallel action's class (on_error, retries, executor) are honoured."""

import pytest

from nbflow import ApplicationBuilder, MapStates, TaskFailed, action

ATTEMPTS = []


@action(reads=["x"], writes=["y"])
def fails_on_2(state):
    ATTEMPTS.append(state["x"])
    if state["x"] == 2:
        raise ValueError("two")
    return state.update(y=state["x"])


class Base(MapStates):
    reads, writes = [], ["rows"]

    def action(self):
        return fails_on_2

    def states(self, state):
        for x in [1, 2, 3]:
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(rows=sorted((s["x"], s.task.ok, s.task.attempts) for s in states))


def _run(step):
    app = ApplicationBuilder().with_actions(step=step).with_entrypoint("step").build()
    return app.run()[2]["rows"]


@pytest.fixture(autouse=True)
def _clear():
    ATTEMPTS.clear()


def test_class_options_on_error_record_declared_on_the_class_is_kept():
    """`on_error = "record"` on a MapStates subclass is not reset to "raise" by the constructor."""

    class Recording(Base):
        on_error = "record"

    assert _run(Recording()) == [(1, True, 1), (2, False, 1), (3, True, 1)]


def test_class_options_retries_declared_on_the_class_are_kept():
    """`retries = 2` on the class retries a failing task twice."""

    class Retrying(Base):
        on_error = "record"
        retries = 2
        retry_backoff_s = 0.0

    assert _run(Retrying()) == [(1, True, 1), (2, False, 3), (3, True, 1)]
    assert ATTEMPTS.count(2) == 3


def test_class_options_executor_declared_on_the_class_is_used():
    """`executor = "sequential"` on the class runs the tasks in order in the calling thread."""

    class InOrder(Base):
        on_error = "record"
        executor = "sequential"

    _run(InOrder())
    assert ATTEMPTS == [1, 2, 3]


def test_class_options_constructor_argument_wins_over_the_class():
    """An argument given to the constructor overrides what the class declares."""

    class Recording(Base):
        on_error = "record"

    with pytest.raises(TaskFailed):
        _run(Recording(on_error="raise"))


def test_class_options_bad_class_value_is_refused_when_the_class_is_made():
    """A class-level on_error that is neither 'raise' nor 'record' is an error naming the class and the fix."""
    with pytest.raises(ValueError, match=r"Typo.*on_error='recrod'.*'raise'.*'record'"):

        class Typo(Base):
            on_error = "recrod"


def _sub_application_hooks(step, persister):
    """Run ``step`` in an app with ``persister`` and a tracker; the (persister, tracker) each task saw."""
    from nbflow import LifecycleHook

    class Tracker(LifecycleHook):
        pass

    seen = []

    @action(reads=["x"], writes=["y"])
    def look(state, __context):
        seen.append((__context.persister, __context.tracker))
        return state.update(y=state["x"])

    step.action = lambda: look
    app_tracker = Tracker()
    app = (
        ApplicationBuilder()
        .with_actions(step=step)
        .with_entrypoint("step")
        .with_persister(persister)
        .with_tracker(app_tracker)
        .build()
    )
    app.run()
    return seen, app_tracker


class Quiet(Base):
    executor = "sequential"
    persister = None
    tracker = None

    def reduce(self, state, states):
        return state.update(rows=[s["y"] for s in states])


def test_class_options_persister_and_tracker_declared_on_the_class_reach_the_tasks():
    """`persister = None` and `tracker = None` on the class: the tasks run without the app's."""
    from nbflow import InMemoryPersister

    seen, _ = _sub_application_hooks(Quiet(), InMemoryPersister())
    assert seen == [(None, None)] * 3


def test_class_options_persister_and_tracker_constructor_arguments_win():
    """`Quiet(persister="cascade", tracker=mine)`: the app's persister, and the tracker given."""
    from nbflow import InMemoryPersister, LifecycleHook

    persister, mine = InMemoryPersister(), LifecycleHook()
    seen, _ = _sub_application_hooks(Quiet(persister="cascade", tracker=mine), persister)
    assert [(p is persister, t is mine) for p, t in seen] == [(True, True)] * 3


def test_class_options_burr_style_methods_are_called():
    """Burr's `def tracker(self, **kwargs)` and `def state_persister(self, **kwargs)` decide, called with the context."""
    from nbflow import InMemoryPersister

    own = InMemoryPersister()
    asked = []

    class BurrStyle(Quiet):
        def tracker(self, **kwargs):
            asked.append(sorted(kwargs))
            return "cascade"

        def state_persister(self, **kwargs):
            return own

    seen, _ = _sub_application_hooks(BurrStyle(), InMemoryPersister())
    assert asked == [["context"]]
    assert all(p is own for p, _ in seen) and all(t is not None for _, t in seen)


def test_class_options_resolve_option_names_the_options_it_knows():
    """An unknown option is an error listing the known ones."""
    with pytest.raises(
        ValueError, match=r"Quiet.resolve_option\('colour'\).*'executor', 'persister', 'tracker'"
    ):
        Quiet().resolve_option("colour")
