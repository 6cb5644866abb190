"""RunConcurrent: concurrent branches over one immutable state, with merged writes (the Junjo reference)."""

import asyncio
import threading
import time

import pytest

from nbflow import (
    ApplicationBuilder,
    GraphBuilder,
    GraphError,
    RunConcurrent,
    RunnableGraph,
    action,
    concat,
    default,
    expr,
    last,
    sum_changes,
    when,
)


@action(reads=["count"], writes=["count"])
def increment(state):
    return state.update(count=state["count"] + 1)


@action(reads=["count"], writes=["count"])
def decrement(state):
    return state.update(count=state["count"] - 1)


@action(reads=["workout"], writes=["activity_count"])
def count_activities(state):
    time.sleep(0.05)
    return state.update(activity_count=len(state["workout"].split(" and ")))


@action(reads=["workout"], writes=["when"])
def determine_when(state):
    time.sleep(0.05)
    return state.update(when="yesterday" if "yesterday" in state["workout"] else "today")


@action(reads=["workout"], writes=["activities"])
def activity_query_splitter(state):
    return state.update(activities=state["workout"].split(" and "))


@action(reads=["activity_count", "when"], writes=["summary"])
def final_node(state):
    return state.update(summary=f"{state['activity_count']} activities {state['when']}")


def _workout_app(workout):
    initial_analysis = RunConcurrent("initial_analysis", items=[count_activities, determine_when])
    return (
        ApplicationBuilder()
        .with_actions(
            initial_analysis=initial_analysis,
            activity_query_splitter=activity_query_splitter,
            final_node=final_node,
        )
        .with_transitions(
            ("initial_analysis", "activity_query_splitter", expr("activity_count > 1")),
            ("activity_query_splitter", "final_node"),
            ("initial_analysis", "final_node", default),
        )
        .with_state(workout=workout)
        .with_entrypoint("initial_analysis")
        .build()
    )


def test_run_concurrent_junjo_example_takes_the_conditional_branch():
    """The Junjo example: concurrent analysis, then a conditional edge to the splitter."""
    steps = [
        a.name for a, _, _ in _workout_app("ran 5k and swam 1k yesterday").iterate(halt_after=["final_node"])
    ]
    assert steps == ["initial_analysis", "activity_query_splitter", "final_node"]
    state = _workout_app("ran 5k and swam 1k yesterday").run(halt_after=["final_node"])[2]
    assert state["summary"] == "2 activities yesterday" and state["activities"] == [
        "ran 5k",
        "swam 1k yesterday",
    ]


def test_run_concurrent_junjo_example_takes_the_default_branch():
    """With one activity the graph skips the splitter."""
    app = _workout_app("cycled 20k")
    steps = [a.name for a, _, _ in app.iterate(halt_after=["final_node"])]
    assert steps == ["initial_analysis", "final_node"]
    assert app.state["summary"] == "1 activities today"


def test_run_concurrent_branches_really_overlap():
    """Both branches are inside their action at the same moment (a barrier only two running threads pass)."""
    barrier = threading.Barrier(2, timeout=10)

    @action(reads=[], writes=["a"])
    def left(state):
        barrier.wait()
        return state.update(a=1)

    @action(reads=[], writes=["b"])
    def right(state):
        barrier.wait()
        return state.update(b=2)

    app = (
        ApplicationBuilder()
        .with_actions(both=RunConcurrent("both", items=[left, right]))
        .with_entrypoint("both")
        .build()
    )
    assert app.run()[2] == {"a": 1, "b": 2}


def test_run_concurrent_counter_loses_no_update():
    """Increment and decrement branches on one counter, merged with sum_changes, over many rounds."""
    both = RunConcurrent(
        "both", items=[increment, decrement, increment.with_name("again")], merge={"count": sum_changes}
    )
    app = (
        ApplicationBuilder()
        .with_actions(both=both)
        .with_transitions(("both", "both", expr("rounds_left > 0")))
        .with_state(count=10, rounds_left=0)
        .with_entrypoint("both")
        .build()
    )
    for _ in range(50):
        app._next = app.graph["both"]
        app.step()
    assert app.state["count"] == 10 + 50


def test_run_concurrent_merge_functions_receive_values_and_before():
    """A merge function gets the branches' values in item order and the value before the step."""
    seen = []

    def spy(values, before):
        seen.append((values, before))
        return max(values)

    both = RunConcurrent("both", items=[increment, decrement], merge={"count": spy})
    app = ApplicationBuilder().with_actions(both=both).with_state(count=5).with_entrypoint("both").build()
    assert app.run()[2]["count"] == 6
    assert seen == [([6, 4], 5)]


def test_run_concurrent_without_merge_for_a_shared_key_fails_at_build_time():
    """Two branches writing one key without a merge function is refused, naming both and the fix."""
    with pytest.raises(GraphError) as info:
        RunConcurrent("clash", items=[increment, decrement])
    message = str(info.value)
    assert "items ['increment', 'decrement'] all write 'count'" in message
    assert "merge={'count': fn}" in message and "sum_changes" in message


def test_run_concurrent_merge_for_an_unwritten_key_is_refused():
    """A merge entry for a key no branch writes is a typo, caught at build time."""
    with pytest.raises(GraphError, match=r"merge names \['cuont'\], which no item writes"):
        RunConcurrent("typo", items=[increment], merge={"cuont": sum_changes})


def test_run_concurrent_runs_sub_graphs_side_by_side():
    """Branches may be RunnableGraphs; their writes are merged like actions' writes."""

    @action(reads=["log"], writes=["log"])
    def note_a(state):
        return state.append(log="a")

    @action(reads=["log"], writes=["log"])
    def note_b(state):
        return state.append(log="b")

    sub = RunnableGraph(
        GraphBuilder().with_actions(a1=note_a, a2=note_a).with_transitions(("a1", "a2")).build(),
        "a1",
        "a2",
        name="twice_a",
    )
    both = RunConcurrent("both", items=[sub, note_b], merge={"log": concat})
    app = (
        ApplicationBuilder().with_actions(both=both).with_state(log=["start"]).with_entrypoint("both").build()
    )
    assert app.run()[2]["log"] == ["start", "a", "a", "b"]


def test_run_concurrent_under_arun_with_async_branches():
    """Async branches run concurrently on the event loop under arun: each waits for the other's signal."""

    async def go():
        x_ready, y_ready = asyncio.Event(), asyncio.Event()

        @action(reads=[], writes=["x"])
        async def fetch_x(state):
            x_ready.set()
            await asyncio.wait_for(y_ready.wait(), 10)
            return state.update(x=1)

        @action(reads=[], writes=["y"])
        async def fetch_y(state):
            y_ready.set()
            await asyncio.wait_for(x_ready.wait(), 10)
            return state.update(y=2)

        both = RunConcurrent("both", items=[fetch_x, fetch_y])
        app = ApplicationBuilder().with_actions(both=both).with_entrypoint("both").build()
        return (await app.arun())[2]

    assert asyncio.run(go()) == {"x": 1, "y": 2}


def test_run_concurrent_last_takes_the_last_branch_in_order():
    """`last` keeps the value of the last branch given, whichever finished last."""
    both = RunConcurrent("both", items=[increment, decrement], merge={"count": last})
    app = ApplicationBuilder().with_actions(both=both).with_state(count=0).with_entrypoint("both").build()
    assert app.run()[2]["count"] == -1


def test_run_concurrent_duplicate_item_names_are_refused():
    """Two branches with one name cannot be told apart in results."""
    with pytest.raises(GraphError, match=r"two items named 'increment'"):
        RunConcurrent("dup", items=[increment, increment], merge={"count": sum_changes})


def test_run_concurrent_in_a_loop_with_when():
    """A RunConcurrent can sit in a loop whose exit is a when() condition."""

    @action(reads=["count"], writes=["done"])
    def check(state):
        return state.update(done=state["count"] >= 3)

    grow = RunConcurrent("grow", items=[increment, increment.with_name("inc2")], merge={"count": sum_changes})
    app = (
        ApplicationBuilder()
        .with_actions(grow=grow, check=check)
        .with_transitions(("grow", "check"), ("check", "grow", when(done=False)))
        .with_state(count=0)
        .with_entrypoint("grow")
        .build()
    )
    assert app.run()[2]["count"] == 4
