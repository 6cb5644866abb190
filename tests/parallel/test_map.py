"""Map actions: streaming reduce, early exit, task identity, ids, failures, retries and cancel."""

import _thread
import asyncio
import os
import threading
import time

import pytest

from nbflow import (
    ActionReturnTypeError,
    ApplicationBuilder,
    GraphBuilder,
    Interrupted,
    MapStates,
    RunnableGraph,
    State,
    SubGraphTask,
    TaskBasedParallelAction,
    TaskFailed,
    TasksCancelled,
    action,
)


@action(reads=["x"], writes=["y"])
def square(state):
    return state.update(y=state["x"] ** 2)


@action(reads=["x"], writes=["y"])
def fail_on_three(state):
    if state["x"] == 3:
        raise ValueError(f"x={state['x']} is unlucky")
    return state.update(y=state["x"] ** 2)


@action(reads=["x"], writes=["y", "pid"])
def square_with_pid(state):
    return state.update(y=state["x"] ** 2, pid=os.getpid())


class Squares(MapStates):
    """Squares 0..n-1; collects (index, y) so tests can check what reduce saw."""

    reads = ["n"]
    writes = ["results"]

    def __init__(self, fn=square, **options):
        super().__init__(**options)
        self.fn = fn

    def action(self):
        return self.fn

    def states(self, state):
        for x in range(state["n"]):
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(results=sorted((s.task.index, s.get("y"), s.task.ok) for s in states))


def _app(parallel, executor="threads", **state):
    return (
        ApplicationBuilder()
        .with_actions(fan=parallel)
        .with_state(**(state or {"n": 5}))
        .with_entrypoint("fan")
        .with_identifiers(app_id="parent")
        .with_executor(executor)
        .build()
    )


def test_map_states_gives_each_sub_state_its_task(executor_name):
    """Every sub-state reaching reduce knows its task's index, id, action and attempts."""
    seen = []

    class Inspect(Squares):
        def reduce(self, state, states):
            for s in states:
                seen.append((s.task.index, s.task.action, s.task.attempts, s.task.ok, s["x"], s["y"]))
            return state.update(results=[])

    _app(Inspect(), executor_name).run()
    assert sorted(seen) == [(i, "square", 1, True, i, i * i) for i in range(5)]


def test_map_sub_application_ids_are_stable_across_runs():
    """Re-running the same step derives the same sub-application ids; another step gets new ones."""

    def ids(app_id, sequence):
        collected = []

        class Collect(Squares):
            def reduce(self, state, states):
                collected.extend(sorted(s.task.application_id for s in states))
                return state.update(results=[])

        app = _app(Collect())
        app.app_id = app_id
        app._sequence_id = sequence
        app.run()
        return collected

    first = ids("parent", 0)
    assert first == ids("parent", 0)
    assert set(first).isdisjoint(ids("parent", 1)) and set(first).isdisjoint(ids("other", 0))


def test_map_reduce_starts_before_the_last_task_ends():
    """reduce sees the first result while a slow task is still running (streaming)."""
    gate = threading.Event()
    order = []

    @action(reads=["x"], writes=["y"])
    def slow_last(state):
        if state["x"] == 4:
            assert gate.wait(10), "reduce never consumed a result before the slow task"
        return state.update(y=state["x"])

    class Stream(Squares):
        def reduce(self, state, states):
            for s in states:
                order.append(s["x"])
                gate.set()
            return state.update(results=order)

    _app(Stream(slow_last), "threads").run()
    assert order[-1] == 4 and sorted(order) == [0, 1, 2, 3, 4]


def test_map_reduce_that_stops_early_cancels_the_remaining_tasks(shutdown_processes):
    """A reduce that returns after the first good answer leaves the unstarted tasks unrun."""
    started = []

    @action(reads=["x"], writes=["y"])
    def slow(state):
        started.append(state["x"])
        time.sleep(0.05)
        return state.update(y=state["x"])

    class FirstAnswer(Squares):
        def reduce(self, state, states):
            first = next(iter(states))
            return state.update(results=[first["y"]])

    state = _app(FirstAnswer(slow, executor=__import__("nbflow").MultiThreadedExecutor(2)), n=200).run()[2]
    assert len(state["results"]) == 1
    assert len(started) < 50


def test_map_empty_states_is_not_an_error(executor_name):
    """states() that yields nothing gives reduce an empty stream."""
    assert _app(Squares(), executor_name, n=0).run()[2]["results"] == []


def test_map_on_error_raise_names_the_task_and_keeps_finished_results(executor_name):
    """The first failure raises TaskFailed naming the task and its inputs; finished work is on the error."""
    app = _app(Squares(fail_on_three), executor_name)
    with pytest.raises(TaskFailed) as info:
        app.run()
    message = str(info.value)
    assert "Task 3 of 'fan' (x=3) raised ValueError: x=3 is unlucky" in message
    assert "on_error='record'" in message
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.partial_state is not None
    assert app.state == {"n": 5}


def test_map_on_error_record_hands_the_failure_to_reduce(executor_name):
    """With on_error='record' the failed task reaches reduce with its exception and the rest go on."""
    seen = {}

    class Record(Squares):
        def reduce(self, state, states):
            for s in states:
                seen[s.task.index] = s.task.error
            return state.update(results=[])

    _app(Record(fail_on_three, on_error="record"), executor_name).run()
    assert sorted(seen) == [0, 1, 2, 3, 4]
    assert isinstance(seen[3], ValueError) and "unlucky" in str(seen[3])
    assert all(seen[i] is None for i in (0, 1, 2, 4))


def test_map_retries_a_failing_task_with_backoff():
    """retries=2 reruns a flaky task until it passes; the attempts are counted."""
    calls = {}

    @action(reads=["x"], writes=["y"])
    def flaky(state):
        calls[state["x"]] = calls.get(state["x"], 0) + 1
        if state["x"] == 1 and calls[1] < 3:
            raise ConnectionError("try again")
        return state.update(y=state["x"])

    attempts = {}

    class Retry(Squares):
        def reduce(self, state, states):
            for s in states:
                attempts[s["x"]] = s.task.attempts
            return state.update(results=[])

    _app(Retry(flaky, retries=2, retry_backoff_s=0.001)).run()
    assert attempts == {0: 1, 1: 3, 2: 1, 3: 1, 4: 1}


def test_map_retries_give_up_after_the_last_attempt():
    """A task failing more often than retries allows fails with the attempt count recorded."""
    errors = []

    class GiveUp(Squares):
        def reduce(self, state, states):
            errors.extend((s.task.attempts, type(s.task.error).__name__) for s in states if not s.task.ok)
            return state.update(results=[])

    _app(GiveUp(fail_on_three, retries=2, retry_backoff_s=0.001, on_error="record")).run()
    assert errors == [(3, "ValueError")]


def test_map_cancel_drops_unstarted_tasks_and_keeps_the_finished(shutdown_processes):
    """cancel() mid-run reduces what finished into exc.partial_state and leaves nothing running."""

    @action(reads=["x"], writes=["y"])
    def slowish(state):
        time.sleep(0.02)
        return state.update(y=state["x"])

    parallel = Squares(slowish)

    class CancelAfterFive(Squares):
        def reduce(self, state, states):
            got = []
            for s in states:
                got.append(s["x"])
                if len(got) == 5:
                    parallel.cancel()
            return state.update(results=got)

    parallel.__class__ = CancelAfterFive
    app = _app(parallel, "threads", n=500)
    with pytest.raises(TasksCancelled) as info:
        app.run()
    assert "by cancel()" in str(info.value)
    assert 5 <= info.value.finished < 100
    assert len(info.value.partial_state["results"]) == info.value.finished


def test_map_keyboard_interrupt_is_a_keyboard_interrupt_carrying_the_finished_work():
    """Ctrl-C while reduce runs raises Interrupted, a KeyboardInterrupt, counting the finished work."""

    @action(reads=["x"], writes=["y"])
    def slowish(state):
        time.sleep(0.01)
        return state.update(y=state["x"])

    class InterruptAfterThree(Squares):
        def reduce(self, state, states):
            got = []
            for s in states:
                got.append(s["x"])
                if len(got) == 3:
                    # What a notebook's Interrupt does: KeyboardInterrupt in the main thread.
                    _thread.interrupt_main()
            return state.update(results=got)

    with pytest.raises(Interrupted) as info:
        _app(InterruptAfterThree(slowish), "threads", n=300).run()
    assert isinstance(info.value, KeyboardInterrupt)
    assert "Ctrl-C" in str(info.value)
    assert info.value.finished >= 3


def test_map_reduce_must_return_a_state():
    """A reduce that returns a list is named in the error with the fix."""

    class Bad(Squares):
        def reduce(self, state, states):
            return [s["y"] for s in states]

    with pytest.raises(
        ActionReturnTypeError, match=r"Bad\.reduce\(\) of 'fan' returned list; it must return a State"
    ):
        _app(Bad()).run()


def test_map_tasks_must_yield_subgraph_tasks():
    """tasks() yielding something else names the class, action and position."""

    class Wrong(TaskBasedParallelAction):
        reads, writes = ["n"], ["results"]

        def tasks(self, state):
            yield State(x=1)

        def reduce(self, state, states):
            return state.update(results=list(states))

    with pytest.raises(TypeError, match=r"Wrong\.tasks\(\) of 'fan' yielded State at position 0"):
        _app(Wrong()).run()


def test_map_action_hook_must_give_an_action():
    """A plain function from action() points to @action."""

    class Plain(Squares):
        def action(self):
            return lambda state: state

    with pytest.raises(TypeError, match=r"a plain function; decorate it with @action"):
        _app(Plain()).run()


def test_map_on_error_value_is_checked():
    """on_error must be 'raise' or 'record', and the message says what each does."""
    with pytest.raises(ValueError, match=r"on_error='ignore'.*'raise'.*'record'"):
        Squares(on_error="ignore")


@pytest.mark.parametrize("style", ["attribute", "property", "method"])
def test_map_reads_and_writes_may_be_attributes_properties_or_methods(style):
    """However reads/writes are declared, the engine sees the same lists."""
    namespace = {
        "attribute": {"reads": ["n"], "writes": ["results"]},
        "property": {"reads": property(lambda self: ["n"]), "writes": property(lambda self: ["results"])},
        "method": {"reads": lambda self: ["n"], "writes": lambda self: ["results"]},
    }[style]
    cls = type("Declared", (Squares,), namespace)
    assert len(_app(cls()).run()[2]["results"]) == 5


def test_map_long_hook_signatures_receive_context_and_inputs():
    """states(self, state, context, inputs) and action(self, state, inputs) get what they ask for."""
    seen = {}

    class Long(Squares):
        def action(self, state, inputs):
            seen["action_inputs"] = inputs
            return square

        def states(self, state, context, inputs):
            seen["app_id"] = context.app_id
            for x in range(inputs["count"]):
                yield state.update(x=x)

    state = _app(Long()).run(inputs={"count": 3})[2]
    assert seen == {"action_inputs": {"count": 3}, "app_id": "parent"}
    assert len(state["results"]) == 3


def test_map_ships_only_the_keys_the_sub_graph_touches(shutdown_processes):
    """A big state value the sub-graph does not read never reaches the worker, yet reduce sees the task's own keys."""
    big = bytearray(50_000_000)

    class Labelled(MapStates):
        reads = ["n", "big"]
        writes = ["results"]

        def action(self):
            return square_with_pid

        def states(self, state):
            for x in range(state["n"]):
                yield state.update(x=x, label=f"point {x}")

        def reduce(self, state, states):
            return state.update(
                results=sorted((s["label"], s["y"], "big" in s, s["pid"] != os.getpid()) for s in states)
            )

    state = _app(Labelled(), "processes", n=3, big=big).run()[2]
    assert state["results"] == [(f"point {x}", x * x, True, True) for x in range(3)]


def test_map_unpicklable_state_value_names_the_task_key_and_fix(shutdown_processes):
    """Sending a lock to a worker process fails before any work, naming the task, key and fix."""

    class WithLock(Squares):
        reads = ["n", "lock"]

        def action(self):
            return locked

        def states(self, state):
            for x in range(state["n"]):
                yield state.update(x=x)

    @action(reads=["x", "lock"], writes=["y"])
    def locked(state):
        return state.update(y=1)

    with pytest.raises(Exception) as info:
        _app(WithLock(), "processes", n=2, lock=threading.Lock()).run()
    message = str(info.value)
    assert "Task 0 of 'fan'" in message and "state key 'lock' holds a lock" in message
    assert "executor='threads'" in message


def test_map_unpicklable_result_names_the_key(shutdown_processes):
    """A worker whose result cannot come back reports the key and the fix, as a task failure."""

    @action(reads=["x"], writes=["y"])
    def makes_generator(state):
        return state.update(y=(i for i in range(3)))

    with pytest.raises(TaskFailed, match=r"state key 'y' holds a value that cannot be pickled back"):
        _app(Squares(makes_generator), "processes", n=2).run()


def test_map_respects_an_enclosing_joblib_parallel_config():
    """With no executor chosen, a joblib.parallel_config backend decides where tasks run."""
    import joblib

    class Threads(Squares):
        def action(self):
            return square_with_pid

    app = ApplicationBuilder().with_actions(fan=Threads()).with_state(n=3).with_entrypoint("fan").build()
    with joblib.parallel_config(backend="sequential"):
        assert len(app.run()[2]["results"]) == 3


def test_map_nested_sub_graph_inherits_the_executor():
    """A parallel action inside a sub-graph uses the application's executor too."""
    seen = []

    class Inner(Squares):
        def reduce(self, state, states):
            return state.update(results=sum(s["y"] for s in states))

    @action(reads=["results"], writes=["total"])
    def record(state, __context):
        seen.append(__context.executor)
        return state.update(total=state["results"])

    inner_graph = (
        GraphBuilder()
        .with_actions(inner=Inner(), record=record)
        .with_transitions(("inner", "record"))
        .build()
    )

    class Outer(MapStates):
        reads, writes = ["m"], ["totals"]

        def action(self):
            return RunnableGraph(inner_graph, entrypoint="inner", halt_after="record")

        def states(self, state):
            for n in range(1, state["m"] + 1):
                yield state.update(n=n)

        def reduce(self, state, states):
            return state.update(totals=sorted(s["total"] for s in states))

    app = (
        ApplicationBuilder()
        .with_actions(outer=Outer())
        .with_state(m=3)
        .with_entrypoint("outer")
        .with_executor("sequential")
        .build()
    )
    assert app.run()[2]["totals"] == [0, 1, 5]
    assert seen == ["sequential"] * 3


def test_map_runs_async_sub_graphs_on_thread_executors():
    """An async action inside a map runs on threads too (each task gets its own loop)."""

    @action(reads=["x"], writes=["y"])
    async def async_square(state):
        await asyncio.sleep(0.001)
        return state.update(y=state["x"] ** 2)

    assert [r[1] for r in _app(Squares(async_square), "threads").run()[2]["results"]] == [0, 1, 4, 9, 16]


def test_map_async_executor_honours_its_concurrency_cap():
    """AsyncExecutor(max_concurrency=3) never has more than three tasks in flight."""
    from nbflow import AsyncExecutor

    running = {"now": 0, "peak": 0}

    @action(reads=["x"], writes=["y"])
    async def tracked(state):
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await asyncio.sleep(0.01)
        running["now"] -= 1
        return state.update(y=state["x"])

    app = _app(Squares(tracked, executor=AsyncExecutor(max_concurrency=3)), n=20)
    assert len(asyncio.run(app.arun())[2]["results"]) == 20
    assert running["peak"] == 3


def test_runnable_graph_runs_as_an_action_in_a_parent_graph():
    """A RunnableGraph in with_actions runs its sub-graph and writes back what it wrote."""

    @action(reads=["x"], writes=["x2"])
    def double(state):
        return state.update(x2=state["x"] * 2)

    @action(reads=["x2"], writes=["x4"])
    def double_again(state):
        return state.update(x4=state["x2"] * 2)

    graph = GraphBuilder().with_actions(a=double, b=double_again).with_transitions(("a", "b")).build()
    sub = RunnableGraph(graph, entrypoint="a", halt_after="b")
    assert (sub.reads, sub.writes) == (["x"], ["x2", "x4"])
    app = ApplicationBuilder().with_actions(sub=sub).with_state(x=3, other=1).with_entrypoint("sub").build()
    assert app.run()[2] == {"x": 3, "other": 1, "x2": 6, "x4": 12}


def test_subgraph_task_describes_itself_by_inputs_or_reads():
    """A task's label shows its inputs, else the values of the keys its graph reads."""
    assert SubGraphTask(action=square, state=State(x=7, z=1)).describe() == "x=7"
    assert SubGraphTask(action=square, state=State(x=7), inputs={"lr": 0.1}).describe() == "lr=0.1"


def test_map_on_threads_ends_when_every_task_delivered_without_waiting_for_the_executor():
    """Tasks on threads hand in their own outcomes: once all are in, run() returns even though the
    executor has not said it is done (joblib notices only on its next poll, 10 ms later)."""
    from nbflow import MultiThreadedExecutor

    release = threading.Event()
    finished = threading.Event()

    class SlowToSayDone(MultiThreadedExecutor):
        def map_unordered(self, fn, items, **kwargs):
            yield from super().map_unordered(fn, items, **kwargs)
            release.wait(30)
            finished.set()

    class Doubles(MapStates):
        reads, writes = ["n"], ["ys"]

        def action(self):
            return square

        def states(self, state):
            for x in range(state["n"]):
                yield state.update(x=x)

        def reduce(self, state, states):
            return state.update(ys=sorted(s["y"] for s in states))

    app = ApplicationBuilder().with_actions(m=Doubles()).with_state(n=20).with_entrypoint("m")
    try:
        result = app.with_executor(SlowToSayDone(2)).build().run()[2]
        assert result["ys"] == [x**2 for x in range(20)]
        assert not finished.is_set()
    finally:
        release.set()
    assert finished.wait(30)


def test_map_tasks_yielding_a_wrong_item_after_good_ones_still_fails_on_threads():
    """Tasks that delivered before the producer broke do not end the step as if it were complete.

    (Whether the three have run when the bad item comes depends on how the executor batches
    them; the error must come out either way.)
    """

    class LateWrong(TaskBasedParallelAction):
        reads, writes = ["n"], ["results"]

        def tasks(self, state):
            for x in range(3):
                yield SubGraphTask(action=square, state=State(x=x))
            yield State(x=1)

        def reduce(self, state, states):
            return state.update(results=list(states))

    for _ in range(20):
        with pytest.raises(TypeError, match=r"LateWrong\.tasks\(\) of 'fan' yielded State at position 3"):
            _app(LateWrong()).run()
