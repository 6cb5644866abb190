"""A parallel step stopped by Ctrl-C, by cancel(), or by its own failing hook keeps its promises.

Ctrl-C is a KeyboardInterrupt (never swallowed by ``except Exception``) carrying what the
finished tasks gave; a hook that raises names the action and the hook, chains the original,
and keeps what finished; no message mentions ``partial_state`` unless it holds something.
"""

import os
import signal
import threading

import pytest

from nbflow import (
    ApplicationBuilder,
    HookError,
    Interrupted,
    MapStates,
    SubGraphTask,
    TaskBasedParallelAction,
    action,
)

RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _release():
    RELEASE.clear()
    yield
    RELEASE.set()


@action(reads=["x"], writes=["y"])
def square_or_hang(state):
    if state["x"] >= 3:
        RELEASE.wait(60)
    return state.update(y=state["x"] ** 2)


class Squares(MapStates):
    reads, writes = [], ["ys"]
    on_error = "record"

    def action(self):
        return square_or_hang

    def states(self, state):
        for x in range(8):
            yield state.update(x=x)

    def reduce(self, state, states):
        ys = []
        for s in states:
            ys.append(s["y"])
            if len(ys) == 3:
                # What the notebook's Stop does, from another thread: SIGINT to this process.
                threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGINT)).start()
        return state.update(ys=sorted(ys))


def _app(step, executor="threads"):
    return (
        ApplicationBuilder().with_actions(step=step).with_entrypoint("step").with_executor(executor).build()
    )


@pytest.mark.parametrize("executor", ["threads", "processes", "async"])
def test_interrupt_during_a_map_is_a_keyboard_interrupt_with_the_partial_state(executor, shutdown_processes):
    """Ctrl-C while tasks run: `except Exception` does not catch it; exc.partial_state holds the 3 finished."""
    app = _app(Squares(), executor)
    caught_as_exception = False
    with pytest.raises(KeyboardInterrupt) as info:
        try:
            app.run()
        except Exception:
            caught_as_exception = True
    assert not caught_as_exception
    exc = info.value
    assert isinstance(exc, Interrupted) and exc.finished == 3
    assert exc.partial_state["ys"] == [0, 1, 4]
    assert "interrupted (Ctrl-C)" in str(exc) and "exc.partial_state" in str(exc)
    assert app.state == {}  # the interrupted step did not complete


def test_interrupt_inside_reduce_does_not_promise_a_partial_state():
    """Ctrl-C raised inside reduce itself: an Interrupted whose message does not point to an empty partial_state."""

    class InterruptedReduce(Squares):
        def reduce(self, state, states):
            for _ in states:
                raise KeyboardInterrupt
            return state

    with pytest.raises(Interrupted) as info:
        _app(InterruptedReduce(), "sequential").run()
    assert info.value.partial_state is None and "partial_state" not in str(info.value)


@action(reads=["x"], writes=["y"])
def square(state):
    return state.update(y=state["x"] ** 2)


class FailingStates(MapStates):
    reads, writes = [], ["ys"]

    def action(self):
        return square

    def states(self, state):
        for x in range(5):
            if x == 3:
                raise ValueError("the data source went away")
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(ys=sorted(s["y"] for s in states))


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes", "async"])
def test_hook_states_raising_half_way_names_the_hook_and_keeps_what_finished(executor, shutdown_processes):
    """states() raising after 3 states: a HookError naming the action and states(), chained, with 3 results kept."""
    with pytest.raises(HookError) as info:
        _app(FailingStates(), executor).run()
    exc = info.value
    message = str(exc)
    assert "FailingStates.states() of 'step' raised ValueError: the data source went away" in message
    assert "after making 3 task(s)" in message and "exc.partial_state" in message
    assert isinstance(exc.__cause__, ValueError)
    assert exc.partial_state["ys"] == [0, 1, 4] and exc.finished == 3


def test_hook_actions_raising_names_actions():
    """actions() raising: the error names actions(), and nothing ran, so it does not mention partial_state."""

    class FailingActions(FailingStates):
        def actions(self, state):
            raise KeyError("model")

    with pytest.raises(HookError) as info:
        _app(FailingActions()).run()
    assert "FailingActions.actions() of 'step' raised KeyError" in str(info.value)
    assert "partial_state" not in str(info.value) and info.value.partial_state is None


def test_hook_tasks_raising_names_tasks():
    """A TaskBasedParallelAction's tasks() raising half-way: the error names tasks()."""

    class Tasks(TaskBasedParallelAction):
        reads, writes = [], ["ys"]

        def tasks(self, state):
            yield SubGraphTask(action=square, state=state.update(x=2))
            raise RuntimeError("ran out")

        def reduce(self, state, states):
            return state.update(ys=[s["y"] for s in states])

    with pytest.raises(HookError) as info:
        _app(Tasks()).run()
    assert "Tasks.tasks() of 'step' raised RuntimeError: ran out" in str(info.value)
    assert info.value.partial_state["ys"] == [4]


def test_hook_reduce_raising_names_reduce_and_keeps_the_finished_states():
    """reduce() raising: the error names reduce(), chains the original, and hands over the finished sub-states."""

    class BadReduce(FailingStates):
        def states(self, state):
            for x in range(4):
                yield state.update(x=x)

        def reduce(self, state, states):
            seen = [s["y"] for s in states]
            raise ZeroDivisionError(f"after {len(seen)}")

    with pytest.raises(HookError) as info:
        _app(BadReduce(), "sequential").run()
    exc = info.value
    assert "BadReduce.reduce() of 'step' raised ZeroDivisionError: after 4" in str(exc)
    assert isinstance(exc.__cause__, ZeroDivisionError)
    assert sorted(s["y"] for s in exc.finished_states) == [0, 1, 4, 9]
    assert exc.partial_state is None and "partial_state" not in str(exc)
