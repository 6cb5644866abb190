"""Running several applications at once and watching all their steps, interleaved.

This is the recipe from the reference's advanced use-cases made public: run
sub-applications side by side and see every step of every one as it happens,
for example to show progress from inside long sub-graphs in a notebook, or to
stop all of them once one has produced what you need (stop iterating: the
others halt after their current step).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from nbflow.core.actions import Action
from nbflow.core.application import Application
from nbflow.core.state import State

__all__ = ["StepEvent", "interleave", "ainterleave"]

_DONE = object()


class StepEvent(NamedTuple):
    """One completed step of one of the interleaved applications."""

    app: Application
    action: Action
    result: Any
    state: State


def interleave(
    apps: Iterable[Application],
    *,
    halt_after: Iterable[str] | None = None,
    halt_before: Iterable[str] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> Iterator[StepEvent]:
    """Run ``apps`` in threads and yield a `StepEvent` for every step of every one, as it completes.

    Closing the iterator (or leaving a ``for`` loop) stops every application
    after the step it is running. An exception in one application stops the
    others and is raised here.

    Example:
        >>> from nbflow import ApplicationBuilder, action, expr
        >>> @action(reads=["n"], writes=["n"])
        ... def tick(state):
        ...     return state.update(n=state["n"] + 1)
        >>> def app(i):
        ...     return (ApplicationBuilder().with_actions(tick=tick)
        ...             .with_transitions(("tick", "tick", expr("n < 3"))).with_state(n=0)
        ...             .with_entrypoint("tick").with_identifiers(app_id=f"a{i}").build())
        >>> sorted(e.app.app_id for e in interleave([app(1), app(2)]))
        ['a1', 'a1', 'a1', 'a2', 'a2', 'a2']
    """
    apps = list(apps)
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def drive(app: Application) -> None:
        try:
            for act, result, state in app.iterate(
                halt_after=halt_after, halt_before=halt_before, inputs=inputs
            ):
                events.put(StepEvent(app, act, result, state))
                if stop.is_set():
                    break
        except BaseException as exc:
            events.put((_DONE, exc))
            return
        events.put((_DONE, None))

    threads = [
        threading.Thread(target=drive, args=(a,), name=f"nbflow-interleave-{a.app_id}", daemon=True)
        for a in apps
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            event = events.get()
            if isinstance(event, tuple) and not isinstance(event, StepEvent) and event[0] is _DONE:
                running -= 1
                if event[1] is not None:
                    raise event[1]
                continue
            yield event
    finally:
        stop.set()
        for thread in threads:
            thread.join()


async def ainterleave(
    apps: Iterable[Application],
    *,
    halt_after: Iterable[str] | None = None,
    halt_before: Iterable[str] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> AsyncIterator[StepEvent]:
    """`interleave` on the event loop: each application runs as an asyncio task with ``aiterate``."""
    events: asyncio.Queue = asyncio.Queue()

    async def drive(app: Application) -> None:
        try:
            async for act, result, state in app.aiterate(
                halt_after=halt_after, halt_before=halt_before, inputs=inputs
            ):
                await events.put(StepEvent(app, act, result, state))
        except BaseException as exc:
            await events.put((_DONE, exc))
            return
        await events.put((_DONE, None))

    tasks = [asyncio.ensure_future(drive(a)) for a in apps]
    running = len(tasks)
    try:
        while running:
            event = await events.get()
            if isinstance(event, tuple) and not isinstance(event, StepEvent) and event[0] is _DONE:
                running -= 1
                if event[1] is not None:
                    raise event[1]
                continue
            yield event
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
