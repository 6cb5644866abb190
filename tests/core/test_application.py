"""Applications: building, stepping, running to halt points, async, hooks and failures."""

import asyncio

import pytest

from nbflow import (
    ApplicationBuilder,
    AsyncActionError,
    ConditionError,
    GraphBuilder,
    GraphError,
    HaltError,
    LifecycleHook,
    State,
    action,
    default,
    expr,
    when,
)


@action(reads=["count"], writes=["count"])
def counter(state):
    return state.update(count=state["count"] + 1)


@action(reads=["count"], writes=["message"])
def report(state):
    return state.update(message=f"counted to {state['count']}")


@action(reads=[], writes=["count"])
def reset(state):
    return state.update(count=0)


def _loop(**state):
    return (
        ApplicationBuilder()
        .with_actions(counter=counter, report=report, reset=reset)
        .with_transitions(
            ("counter", "counter", expr("count < 3")),
            ("counter", "report", default),
            ("report", "reset"),
        )
        .with_state(**(state or {"count": 0}))
        .with_entrypoint("counter")
        .with_identifiers(app_id="loop-1", partition_key="me")
        .build()
    )


class Recorder(LifecycleHook):
    def __init__(self):
        self.events = []

    def pre_run(self, *, app, halt_after, halt_before, inputs, **kwargs):
        self.events.append(("pre_run", tuple(halt_after)))

    def post_run(self, *, app, action, result, state, exception, **kwargs):
        self.events.append(
            ("post_run", action.name if action else None, type(exception).__name__ if exception else None)
        )

    def pre_step(self, *, app, action, state, inputs, sequence_id, **kwargs):
        self.events.append(("pre_step", action.name, sequence_id))

    def post_step(self, *, app, action, state, result, exception, sequence_id, duration_s, **kwargs):
        assert duration_s >= 0
        self.events.append(
            ("post_step", action.name, sequence_id, type(exception).__name__ if exception else None)
        )


def test_application_loops_until_the_condition_fails_then_halts_after():
    """A three-action loop with a conditional exit runs to halt_after and reports the last step."""
    app = _loop()
    act, result, state = app.run(halt_after=["report"])
    assert act.name == "report"
    assert result == {"message": "counted to 3"}
    assert state == {"count": 3, "message": "counted to 3"}
    assert app.sequence_id == 3 and app.next_action.name == "reset"
    assert (app.app_id, app.partition_key) == ("loop-1", "me")


def test_application_halt_before_stops_without_running_the_action():
    """halt_before returns the action that would run next, with a None result."""
    app = _loop()
    act, result, state = app.run(halt_before=["report"])
    assert (act.name, result, state["count"]) == ("report", None, 3)
    assert "message" not in state


def test_application_step_runs_one_action_at_a_time_and_returns_none_at_the_end():
    """step() advances one action; after the graph ends it returns None."""
    app = (
        ApplicationBuilder()
        .with_actions(counter=counter, report=report)
        .with_transitions(("counter", "report"))
        .with_state(count=5)
        .with_entrypoint("counter")
        .build()
    )
    assert app.step()[0].name == "counter"
    assert app.step()[2]["message"] == "counted to 6"
    assert app.step() is None
    assert app.next_action is None


def test_application_run_without_halts_runs_to_the_end_of_the_graph():
    """With no halt points, run() stops when no transition applies."""
    app = (
        ApplicationBuilder()
        .with_actions(counter=counter, report=report)
        .with_transitions(("counter", "counter", when(count=1)), ("counter", "report", expr("count >= 2")))
        .with_state(count=0)
        .with_entrypoint("counter")
        .build()
    )
    act, _, state = app.run()
    assert act.name == "report" and state["count"] == 2


def test_application_iterate_yields_every_step():
    """iterate() yields (action, result, state) after each step, in order."""
    steps = [(a.name, s["count"]) for a, _, s in _loop().iterate(halt_after=["report"])]
    assert steps == [("counter", 1), ("counter", 2), ("counter", 3), ("report", 3)]


def test_application_state_and_previous_states_are_unchanged_by_later_steps():
    """Each step produces a new State; states handed out earlier never change."""
    app = _loop()
    first = app.step()[2]
    app.run(halt_after=["report"])
    assert first == {"count": 1}


def test_application_inputs_reach_the_actions_that_declare_them():
    """run(inputs=...) offers the inputs to every step; each action takes what it declares."""

    @action(reads=["count"], writes=["count"])
    def add(state, amount):
        return state.update(count=state["count"] + amount)

    app = (
        ApplicationBuilder()
        .with_actions(add=add, report=report)
        .with_transitions(("add", "report"))
        .with_state(count=1)
        .with_entrypoint("add")
        .build()
    )
    assert app.run(halt_after=["report"], inputs={"amount": 41})[2]["message"] == "counted to 42"


def test_application_failing_step_keeps_the_previous_state_and_can_be_retried():
    """A step that raises leaves app.state and sequence_id as they were; a retry continues."""
    calls = {"n": 0}

    @action(reads=["count"], writes=["count"])
    def flaky(state):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("transient")
        return state.update(count=state["count"] + 10)

    app = ApplicationBuilder().with_actions(flaky=flaky).with_state(count=1).with_entrypoint("flaky").build()
    with pytest.raises(RuntimeError, match="transient") as info:
        app.step()
    assert app.state == {"count": 1} and app.sequence_id is None
    assert any("action 'flaky', step 0" in note for note in getattr(info.value, "__notes__", []))
    assert app.step()[2]["count"] == 11


def test_application_hooks_see_runs_and_steps_in_order():
    """Hooks are called around the run and around each step, with sequence ids."""
    recorder = Recorder()
    app = _loop(count=2)
    app.hooks.append(recorder)
    app.run(halt_after=["report"])
    assert recorder.events == [
        ("pre_run", ("report",)),
        ("pre_step", "counter", 0),
        ("post_step", "counter", 0, None),
        ("pre_step", "report", 1),
        ("post_step", "report", 1, None),
        ("post_run", "report", None),
    ]


def test_application_hooks_see_the_exception_of_a_failing_step():
    """post_step and post_run receive the exception before it propagates."""

    @action(reads=[], writes=[])
    def boom(state):
        raise ValueError("bad")

    recorder = Recorder()
    app = ApplicationBuilder().with_actions(boom=boom).with_entrypoint("boom").with_hooks(recorder).build()
    with pytest.raises(ValueError, match="bad"):
        app.run()
    assert recorder.events[-2:] == [("post_step", "boom", 0, "ValueError"), ("post_run", None, "ValueError")]


def test_application_with_hooks_refuses_non_hooks():
    """with_hooks() takes LifecycleHook instances and says how to write one."""
    with pytest.raises(TypeError, match=r"Subclass nbflow\.LifecycleHook"):
        ApplicationBuilder().with_hooks(print)


def test_application_build_without_entrypoint_lists_the_actions():
    """A missing entrypoint is a build-time error naming the candidates."""
    with pytest.raises(
        GraphError, match=r"no entrypoint\. Call \.with_entrypoint\(name\) with one of \['counter'\]"
    ):
        ApplicationBuilder().with_actions(counter=counter).with_state(count=0).build()


def test_application_build_with_unknown_entrypoint_names_it():
    """An entrypoint that is not an action is refused at build time."""
    builder = ApplicationBuilder().with_actions(counter=counter).with_state(count=0).with_entrypoint("conter")
    with pytest.raises(GraphError, match=r"with_entrypoint\(\) names 'conter'.*\['counter'\]"):
        builder.build()


def test_application_build_refuses_a_read_that_nothing_provides():
    """A key read by an action but neither in the state nor written anywhere fails at build time."""
    builder = ApplicationBuilder().with_actions(report=report).with_entrypoint("report")
    with pytest.raises(
        GraphError, match=r"'report' reads 'count', but no action writes it.*with_state\(count=\.\.\.\)"
    ):
        builder.build()


def test_application_build_refuses_a_condition_key_that_nothing_provides():
    """A condition on a key nobody provides is caught at build time, naming the transition."""
    builder = (
        ApplicationBuilder()
        .with_actions(counter=counter)
        .with_transitions(("counter", "counter", expr("cuont < 3")))
        .with_state(count=0)
        .with_entrypoint("counter")
    )
    with pytest.raises(GraphError, match=r"'counter' -> 'counter' reads 'cuont'"):
        builder.build()


def test_application_halt_after_an_unknown_action_lists_the_known_ones():
    """A typo in halt_after is caught before any step runs."""
    app = _loop()
    with pytest.raises(HaltError, match=r"halt_after names 'reprot'.*\['counter', 'report', 'reset'\]"):
        app.run(halt_after=["reprot"])
    assert app.sequence_id is None


def test_application_sync_run_of_an_async_action_points_to_arun():
    """Running an async action through the sync API names the action and the async methods."""

    @action(reads=[], writes=["x"])
    async def fetch(state):
        return state.update(x=1)

    app = ApplicationBuilder().with_actions(fetch=fetch).with_entrypoint("fetch").build()
    with pytest.raises(AsyncActionError, match=r"'fetch' is async.*app\.arun"):
        app.run()


def test_application_arun_mixes_async_and_sync_actions():
    """arun() awaits async actions and runs sync ones, honouring halt_after."""

    @action(reads=["count"], writes=["count"])
    async def async_counter(state):
        await asyncio.sleep(0)
        return state.update(count=state["count"] + 1)

    app = (
        ApplicationBuilder()
        .with_actions(counter=async_counter, report=report)
        .with_transitions(("counter", "counter", expr("count < 3")), ("counter", "report"))
        .with_state(count=0)
        .with_entrypoint("counter")
        .build()
    )
    act, _, state = asyncio.run(app.arun(halt_after=["report"]))
    assert act.name == "report" and state["message"] == "counted to 3"


def test_application_aiterate_and_astep_yield_steps():
    """aiterate() yields each step; astep() returns None at the end."""

    async def go():
        app = _loop(count=2)
        names = [a.name async for a, _, _ in app.aiterate(halt_after=["report"])]
        app2 = _loop(count=2)
        await app2.astep()
        return names, app2.sequence_id

    assert asyncio.run(go()) == (["counter", "report"], 0)


def test_application_async_hooks_are_awaited():
    """In the async API a coroutine hook method is awaited."""
    seen = []

    class AsyncHook(LifecycleHook):
        async def post_step(self, *, action, **kwargs):
            await asyncio.sleep(0)
            seen.append(action.name)

    app = _loop(count=2)
    app.hooks.append(AsyncHook())
    asyncio.run(app.arun(halt_after=["report"]))
    assert seen == ["counter", "report"]


def test_application_condition_error_keeps_the_new_state():
    """If choosing the next action fails, the completed step's state is still kept."""

    @action(reads=[], writes=["x"])
    def write_x(state):
        return state.update(x=1)

    app = (
        ApplicationBuilder()
        .with_actions(write_x=write_x)
        .with_transitions(("write_x", "write_x", expr("y > 1")))
        .with_state(y=1)
        .with_entrypoint("write_x")
        .build()
    )
    app._state = app.state.wipe(delete=["y"])  # y vanishes before the condition is checked
    with pytest.raises(ConditionError, match="'y'"):
        app.step()
    assert app.state == {"x": 1} and app.sequence_id == 0


def test_application_with_graph_reuses_a_prebuilt_graph():
    """with_graph() takes a Graph; two applications over it run independently."""
    graph = (
        GraphBuilder()
        .with_actions(counter=counter, report=report)
        .with_transitions(("counter", "counter", expr("count < 2")), ("counter", "report"))
        .build()
    )
    a = ApplicationBuilder().with_graph(graph).with_state(count=0).with_entrypoint("counter").build()
    b = ApplicationBuilder().with_graph(graph).with_state(State(count=1)).with_entrypoint("counter").build()
    assert a.run(halt_after=["report"])[2]["count"] == 2
    assert b.run(halt_after=["report"])[2]["count"] == 2
    assert a.sequence_id == 2 and b.sequence_id == 1


def test_application_context_carries_identifiers_to_actions():
    """An action's __context names its application, step and action."""

    @action(reads=[], writes=["where"])
    def where(state, __context):
        return state.update(where=(__context.app_id, __context.sequence_id, __context.action_name))

    app = ApplicationBuilder().with_actions(w=where).with_entrypoint("w").with_identifiers(app_id="A").build()
    assert app.run()[2]["where"] == ("A", 0, "w")


def _events_of(way, app):
    """Hook events of one way of running ``app``: run, arun, iterate or aiterate stopped after one step."""
    recorder = Recorder()
    app.hooks.append(recorder)
    try:
        if way == "run":
            app.run(halt_after=["report"])
        elif way == "arun":
            asyncio.run(app.arun(halt_after=["report"]))
        elif way == "iterate-break":
            for _ in app.iterate(halt_after=["report"]):
                break
        elif way == "aiterate-break":

            async def first_step():
                steps = app.aiterate(halt_after=["report"])
                async for _ in steps:
                    break
                await steps.aclose()

            asyncio.run(first_step())
    except ValueError:
        pass
    return recorder.events


@pytest.mark.parametrize("pair", [("run", "arun"), ("iterate-break", "aiterate-break")])
@pytest.mark.parametrize("failing", [False, True])
def test_application_sync_and_async_paths_fire_the_same_hooks(pair, failing):
    """run and arun (and iterate and aiterate closed early) see one sequence of hook events, failure or not."""

    @action(reads=["count"], writes=["message"])
    def failing_report(state):
        raise ValueError("report failed")

    def build():
        app = _loop(count=2)
        if failing:
            app.graph.actions["report"] = failing_report.with_name("report")
        return app

    sync_events, async_events = (_events_of(way, build()) for way in pair)
    assert sync_events == async_events
    assert sync_events[-1][0] == "post_run" and len([e for e in sync_events if e[0] == "post_run"]) == 1
    if pair[0] == "iterate-break":
        assert sync_events[-1] == ("post_run", "counter", "GeneratorExit")
    elif failing:
        assert sync_events[-2:] == [
            ("post_step", "report", 1, "ValueError"),
            ("post_run", "counter", "ValueError"),
        ]
