"""Burr's parallelism contract, as Burr users write it: one test per item of the contract.

Each test is written from Burr's documented behaviour (apache/burr, burr/core/parallelism.py and
the parallelism reference), with nbflow names in place of Burr's.
"""

import asyncio
import threading

import pytest

from nbflow import (
    ApplicationBuilder,
    ApplicationContext,
    InMemoryPersister,
    Input,
    MapActions,
    MapActionsAndStates,
    MapStates,
    PostRunStepHook,
    PostRunStepHookAsync,
    PreRunStepHook,
    PreRunStepHookAsync,
    Result,
    RunnableGraph,
    State,
    SubGraphTask,
    TaskBasedParallelAction,
    action,
    map_reduce_action,
)


@action(reads=["prompt"], writes=["llm_output"])
def echo(state):
    return state.update(llm_output=state["prompt"].upper())


PROMPTS = ["a", "b", "c"]


def _run(step, executor="threads", **state):
    app = (
        ApplicationBuilder()
        .with_actions(step=step)
        .with_state(**state)
        .with_entrypoint("step")
        .with_executor(executor)
        .build()
    )
    return app.run()[2]


# -- 1. the short reduce(self, states) --------------------------------------------------------------


class ShortReduce(MapStates):
    """The reference's first example: reduce(self, states) returns the last sub-state, updated."""

    def action(self):
        return echo

    def states(self, state):
        for prompt in PROMPTS:
            yield state.update(prompt=prompt)

    def reduce(self, states):
        all_llm_outputs = []
        for state in states:
            all_llm_outputs.append(state["llm_output"])
        return state.update(all_llm_outputs=all_llm_outputs)

    @property
    def reads(self):
        return []

    @property
    def writes(self):
        return ["all_llm_outputs"]


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes"])
def test_burr_short_reduce_takes_the_declared_writes_from_the_state_it_returns(executor, shutdown_processes):
    """The last sub-state, updated, is not a contract breach: its declared writes land, nothing else does."""
    final = _run(ShortReduce(ordered=True), executor, base=1)
    assert final["all_llm_outputs"] == ["A", "B", "C"]
    assert final.get_all() == {"base": 1, "all_llm_outputs": ["A", "B", "C"]}


# -- 2. is_async() as a method -----------------------------------------------------------------------


def test_burr_is_async_overridden_as_a_method_is_honoured():
    """`def is_async(self): return False`, as Burr's docs say, runs under the sync API."""

    class Sync(ShortReduce):
        def is_async(self):
            return False

    assert Sync().is_async is False
    assert _run(Sync(ordered=True))["all_llm_outputs"] == ["A", "B", "C"]


def test_burr_is_async_method_true_with_an_async_reduce_runs_under_arun():
    """`def is_async(self): return True` with an async reduce runs under arun."""

    class Async(MapStates):
        reads, writes = [], ["n"]

        def is_async(self):
            return True

        def action(self):
            return echo

        def states(self, state):
            for prompt in PROMPTS:
                yield state.update(prompt=prompt)

        async def reduce(self, state, states):
            n = 0
            async for _ in states:
                n += 1
            return state.update(n=n)

    app = ApplicationBuilder().with_actions(step=Async()).with_entrypoint("step").build()
    assert asyncio.run(app.arun())[2]["n"] == 3


# -- 3. SubGraphTask as Burr builds it ---------------------------------------------------------------


def test_burr_subgraph_task_takes_graph_and_its_own_persister_and_tracker():
    """SubGraphTask(graph=..., inputs=, state=, application_id=, tracker=, state_persister=, state_initializer=)."""
    persister = InMemoryPersister()
    seen = []

    class Steps(PostRunStepHook):
        def post_run_step(self, *, app_id, action, **kwargs):
            seen.append((app_id, action.name))

    class Tasks(TaskBasedParallelAction):
        reads, writes = [], ["outputs"]

        def tasks(self, state, context):
            for prompt in PROMPTS:
                yield SubGraphTask(
                    graph=RunnableGraph.create(echo),
                    inputs={},
                    state=state.update(prompt=prompt),
                    application_id=f"task-{prompt}",
                    tracker=Steps(),
                    state_persister=persister,
                    state_initializer=persister,
                )

        def reduce(self, state, states):
            return state.update(outputs=sorted(s["llm_output"] for s in states))

    assert _run(Tasks())["outputs"] == ["A", "B", "C"]
    assert sorted(seen) == [("task-a", "echo"), ("task-b", "echo"), ("task-c", "echo")]
    assert persister.load(None, "task-b").state["llm_output"] == "B"


# -- 4. an async generator of tasks ------------------------------------------------------------------


@pytest.mark.parametrize("api", ["sync", "async"])
def test_burr_async_generator_tasks_run(api):
    """`async def tasks(...)` that yields SubGraphTasks runs, under run and arun."""

    class AsyncTasks(TaskBasedParallelAction):
        reads, writes = [], ["outputs"]

        async def tasks(self, state, context):
            for prompt in PROMPTS:
                await asyncio.sleep(0)
                yield SubGraphTask(
                    graph=RunnableGraph.create(echo), inputs={}, state=state.update(prompt=prompt)
                )

        def reduce(self, state, states):
            return state.update(outputs=sorted(s["llm_output"] for s in states))

    app = ApplicationBuilder().with_actions(step=AsyncTasks()).with_entrypoint("step").build()
    final = app.run()[2] if api == "sync" else asyncio.run(app.arun())[2]
    assert final["outputs"] == ["A", "B", "C"]


# -- 5. MapActions.state() defaults to the state ----------------------------------------------------


def test_burr_map_actions_without_state_runs_over_the_state_as_it_is():
    """MapActions needs no state(): Burr returns the state unchanged."""

    class Models(MapActions):
        reads, writes = ["prompt"], ["outputs"]

        def actions(self, state):
            yield echo.with_name("first")
            yield echo.with_name("second")

        def reduce(self, state, states):
            return state.update(outputs=[s["llm_output"] for s in states])

    assert Models().state(State(prompt="x"), {}) == {"prompt": "x"}
    assert _run(Models(), prompt="q")["outputs"] == ["Q", "Q"]


# -- 6. the names Burr users reach for ---------------------------------------------------------------


def test_burr_runnable_graph_create_wraps_an_action_or_passes_a_graph_through():
    """RunnableGraph.create(action) is a one-node graph; create(runnable_graph) is that graph."""
    graph = RunnableGraph.create(echo)
    assert (graph.entrypoint, graph.halt_after) == ("echo", ["echo"])
    assert RunnableGraph.create(graph) is graph


def test_burr_application_context_has_burrs_field_names():
    """state_persister, state_initializer and parallel_executor_factory are on the context."""
    persister = InMemoryPersister()
    seen = {}

    @action(reads=[], writes=[])
    def look(state, __context: ApplicationContext):
        seen["persister"] = __context.state_persister
        seen["initializer"] = __context.state_initializer
        with __context.parallel_executor_factory() as pool:
            seen["mapped"] = list(pool.map(abs, [-1, -2]))
        return state

    app = (
        ApplicationBuilder()
        .with_actions(look=look)
        .with_state_persister(persister)
        .with_entrypoint("look")
        .build()
    )
    assert app.get_next_action().name == "look"
    app.run()
    assert seen == {"persister": persister, "initializer": persister, "mapped": [1, 2]}


def test_burr_input_and_result_actions():
    """Input(key) writes an input into the state; Result(key) returns state values as its result."""
    app = (
        ApplicationBuilder()
        .with_actions(take=Input("x"), give=Result("x"))
        .with_transitions(("take", "give"))
        .with_entrypoint("take")
        .build()
    )
    act, result, state = app.run(halt_after=["give"], inputs={"x": 41})
    assert (act.name, result, state["x"]) == ("give", {"x": 41}, 41)


def test_burr_map_reduce_action_builds_a_map_from_functions():
    """map_reduce_action(action=, state=, reducer=, reads=, writes=, inputs=) is a working parallel action."""

    def states(state, context, inputs):
        for prompt in PROMPTS:
            yield state.update(prompt=prompt)

    def reducer(state, states):
        return state.update(outputs=sorted(s["llm_output"] for s in states))

    step = map_reduce_action(
        action=echo, state=states, reducer=reducer, reads=[], writes=["outputs"], inputs=[]
    )
    assert _run(step)["outputs"] == ["A", "B", "C"]


@pytest.mark.parametrize(
    "call",
    [
        lambda: State(n=1).append(n=2),
        lambda: State(n=1).extend(n=[2]),
        lambda: State(n="a").increment(n=1),
    ],
    ids=["append", "extend", "increment"],
)
def test_burr_state_operation_on_the_wrong_type_is_a_value_error_too(call):
    """Burr raises ValueError where nbflow raised TypeError: the error is both."""
    with pytest.raises(ValueError):
        call()
    with pytest.raises(TypeError):
        call()


# -- 7. product order --------------------------------------------------------------------------------


def test_burr_product_runs_actions_outer_states_inner():
    """MapActionsAndStates numbers tasks action by action, then state by state, as Burr does."""

    class Product(MapActionsAndStates):
        reads, writes = [], ["order"]
        executor = "sequential"

        def actions(self, state):
            yield echo.with_name("one")
            yield echo.with_name("two")

        def states(self, state):
            for prompt in ["x", "y"]:
                yield state.update(prompt=prompt)

        def reduce(self, state, states):
            return state.update(order=[(s.task.action, s["prompt"]) for s in states])

    assert _run(Product())["order"] == [("one", "x"), ("one", "y"), ("two", "x"), ("two", "y")]


# -- 8. reduce in task order, on request -------------------------------------------------------------


@action(reads=["delay"], writes=["done"])
def sleepy(state):
    threading.Event().wait(state["delay"])
    return state.update(done=state["delay"])


class Delays(MapStates):
    reads, writes = [], ["order"]

    def action(self):
        return sleepy

    def states(self, state):
        for delay in [0.3, 0.0, 0.15]:
            yield state.update(delay=delay)

    def reduce(self, state, states):
        return state.update(order=[s["done"] for s in states])


def test_burr_reduce_streams_in_completion_order_by_default():
    """By default reduce combines the states as they come in: the quick ones first."""
    assert _run(Delays())["order"] == [0.0, 0.15, 0.3]


@pytest.mark.parametrize("executor", ["threads", "processes", "async"])
def test_burr_ordered_reduce_receives_states_in_task_order(executor, shutdown_processes):
    """ordered=True (a class attribute or argument) hands reduce the states in the order of the tasks."""
    assert _run(Delays(ordered=True), executor)["order"] == [0.3, 0.0, 0.15]

    class OrderedDelays(Delays):
        ordered = True

    assert _run(OrderedDelays(), executor)["order"] == [0.3, 0.0, 0.15]


# -- 9. hooks and trackers as Burr writes them -------------------------------------------------------


def test_burr_step_hooks_are_called_with_burrs_arguments():
    """PreRunStepHook/PostRunStepHook subclasses, sync and async, get Burr's keyword arguments."""
    calls = []

    class Pre(PreRunStepHook):
        def pre_run_step(self, *, state, action, inputs, sequence_id, **future_kwargs):
            calls.append(("pre", action.name, sequence_id, dict(inputs), state["n"]))

    class Post(PostRunStepHook):
        def post_run_step(self, *, state, action, result, sequence_id, exception, **future_kwargs):
            calls.append(("post", action.name, sequence_id, result, exception))

    class APre(PreRunStepHookAsync):
        async def pre_run_step(self, *, action, **future_kwargs):
            calls.append(("apre", action.name))

    class APost(PostRunStepHookAsync):
        async def post_run_step(self, *, action, **future_kwargs):
            calls.append(("apost", action.name))

    @action(reads=["n"], writes=["n"])
    def add(state, by):
        return state.update(n=state["n"] + by)

    app = (
        ApplicationBuilder()
        .with_actions(add=add)
        .with_state(n=1)
        .with_entrypoint("add")
        .with_hooks(Pre(), Post(), APre(), APost())
        .build()
    )
    asyncio.run(app.arun(halt_after=["add"], inputs={"by": 2}))
    assert calls == [
        ("pre", "add", 0, {"by": 2}, 1),
        ("apre", "add"),
        ("post", "add", 0, {"n": 3}, None),
        ("apost", "add"),
    ]


def test_burr_tracker_with_copy_gets_a_copy_for_each_sub_application():
    """A tracker that has copy() is copied for every sub-application; the copies see the tasks' steps."""
    copies = []

    class Tracker(PostRunStepHook):
        def __init__(self, name="root"):
            self.name, self.steps = name, []

        def copy(self):
            child = Tracker(f"copy-{len(copies)}")
            copies.append(child)
            return child

        def post_run_step(self, *, action, **future_kwargs):
            self.steps.append(action.name)

    tracker = Tracker()
    app = (
        ApplicationBuilder()
        .with_actions(step=ShortReduce())
        .with_tracker(tracker)
        .with_entrypoint("step")
        .build()
    )
    app.run()
    assert tracker.steps == ["step"]
    assert len(copies) == 3 and all(c.steps == ["echo"] for c in copies)


# -- nbflow.burr: Burr's names, and Burr's order ------------------------------------------------------


def test_burr_module_classes_reduce_in_task_order():
    """nbflow.burr.MapStates is nbflow's MapStates in Burr's order: reduce sees the states as the tasks go."""
    from nbflow import burr

    class BurrDelays(burr.MapStates):
        reads, writes = [], ["order"]

        def action(self):
            return sleepy

        def states(self, state):
            for delay in [0.3, 0.0, 0.15]:
                yield state.update(delay=delay)

        def reduce(self, state, states):
            return state.update(order=[s["done"] for s in states])

    assert _run(BurrDelays())["order"] == [0.3, 0.0, 0.15]


def test_burr_persister_returning_dicts_resumes_an_application():
    """A persister written against Burr (load returns PersistedStateData, a dict) saves and resumes."""
    from nbflow import burr

    class DictPersister(burr.BaseStatePersister):
        def __init__(self):
            self.rows = {}

        def save(self, partition_key, app_id, sequence_id, position, state, status, **kwargs):
            self.rows[app_id] = {
                "partition_key": partition_key,
                "app_id": app_id,
                "sequence_id": sequence_id,
                "position": position,
                "state": state,
                "created_at": "now",
                "status": status,
            }

        def load(self, partition_key, app_id, sequence_id=None, **kwargs):
            return self.rows.get(app_id)

        def list_app_ids(self, partition_key, **kwargs):
            return list(self.rows)

    @action(reads=["n"], writes=["n"])
    def tick(state):
        return state.update(n=state["n"] + 1)

    persister = DictPersister()

    def build():
        return (
            ApplicationBuilder()
            .with_actions(tick=tick)
            .with_transitions(("tick", "tick"))
            .with_state_persister(persister)
            .initialize_from(persister, default_state={"n": 0}, default_entrypoint="tick")
            .with_identifiers(app_id="burr-app")
            .build()
        )

    first = build()
    first.step()
    first.step()
    again = build()
    assert (again.sequence_id, again.state["n"]) == (1, 2)
    again.step()
    assert persister.rows["burr-app"]["state"]["n"] == 3
