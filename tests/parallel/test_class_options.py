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
