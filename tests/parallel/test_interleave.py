"""interleave/ainterleave: watching the steps of several running applications as they happen."""

import asyncio
import threading

import pytest

from nbflow import ApplicationBuilder, action, ainterleave, expr, interleave


@action(reads=["n"], writes=["n"])
def tick(state):
    return state.update(n=state["n"] + 1)


def _counter(app_id, until=3, act=tick):
    return (
        ApplicationBuilder()
        .with_actions(tick=act)
        .with_transitions(("tick", "tick", expr(f"n < {until}")))
        .with_state(n=0)
        .with_entrypoint("tick")
        .with_identifiers(app_id=app_id)
        .build()
    )


def test_interleave_yields_every_step_of_every_app():
    """Each application's steps all arrive, in order within that application."""
    events = list(interleave([_counter("a"), _counter("b", until=5)]))
    by_app = {}
    for event in events:
        by_app.setdefault(event.app.app_id, []).append(event.state["n"])
    assert by_app == {"a": [1, 2, 3], "b": [1, 2, 3, 4, 5]}


def test_interleave_steps_of_different_apps_are_mixed():
    """Steps arrive as they happen: app b's step lands between two of app a's."""
    a_may_go = threading.Event()

    @action(reads=["n"], writes=["n"])
    def waits_for_b(state):
        if state["n"] == 1:
            assert a_may_go.wait(10)
        return state.update(n=state["n"] + 1)

    order = []
    for event in interleave([_counter("a", act=waits_for_b), _counter("b", until=1)]):
        order.append((event.app.app_id, event.state["n"]))
        if event.app.app_id == "b":
            a_may_go.set()
    assert order.index(("b", 1)) < order.index(("a", 2))


def test_interleave_stopping_early_halts_every_app():
    """Leaving the loop stops the others after their current step."""
    apps = [_counter("a", until=10_000), _counter("b", until=10_000)]
    for event in interleave(apps):
        if event.state["n"] == 5:
            break
    assert all(app.sequence_id < 10_000 for app in apps)


def test_interleave_raises_an_apps_exception():
    """An application that fails stops the interleaving with its exception."""

    @action(reads=["n"], writes=["n"])
    def boom(state):
        raise RuntimeError("bad step")

    with pytest.raises(RuntimeError, match="bad step"):
        list(interleave([_counter("a", act=boom), _counter("b")]))


def test_ainterleave_yields_steps_of_async_apps():
    """The async form runs each application's aiterate on the loop."""

    @action(reads=["n"], writes=["n"])
    async def atick(state):
        await asyncio.sleep(0)
        return state.update(n=state["n"] + 1)

    async def collect():
        return [
            (e.app.app_id, e.state["n"])
            async for e in ainterleave([_counter("a", act=atick), _counter("b", act=atick)])
        ]

    events = asyncio.run(collect())
    assert sorted(events) == [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("b", 3)]
