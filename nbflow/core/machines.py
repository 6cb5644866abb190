"""Logic written once for synchronous and asynchronous callers.

A *machine* is a generator that holds the logic and never blocks: it yields a
request for what it needs done (run this action, fire that hook, sleep) and
receives the result, or has the failure thrown into it. A *driver* does what is
asked, by calling (`drive`) or by awaiting (`adrive`), and that is all a driver
does. A request ``(HAND_OUT, value)`` is handed to the driver's own caller
instead, as the next item it iterates over; a failure there (the caller closing
the iteration, say) is thrown into the machine like any other.

Example:
    >>> def machine():
    ...     doubled = yield ("double", 21)
    ...     yield (HAND_OUT, doubled)
    ...     return "done"
    >>> driven = drive(machine(), lambda request: request[1] * 2)
    >>> next(driven)
    42
    >>> complete(machine(), lambda request: request[1] * 2)
    'done'

The drivers are written flat (no helper per request) because every step of every
task goes through them: they are the hot path's floor.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any

__all__ = ["HAND_OUT", "drive", "adrive", "complete", "acomplete"]

HAND_OUT = "hand out"

Machine = Generator[tuple, Any, Any]


def drive(machine: Machine, perform: Callable[[tuple], Any]) -> Generator[Any, None, Any]:
    """Run ``machine``, calling ``perform(request)`` for each request; yield what it hands out.

    Returns (as a generator's value) what the machine returns.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = machine.send(value) if error is None else machine.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            if request[0] is HAND_OUT:
                yield request[1]
            else:
                value = perform(request)
        except BaseException as exc:
            error = exc


def complete(machine: Machine, perform: Callable[[tuple], Any]) -> Any:
    """Run ``machine`` to its end, calling ``perform(request)`` and passing over hand-outs; its value."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = machine.send(value) if error is None else machine.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        if request[0] is not HAND_OUT:
            try:
                value = perform(request)
            except BaseException as exc:
                error = exc


async def adrive(
    machine: Machine, perform: Callable[[tuple], Awaitable[Any]], final: list
) -> AsyncGenerator[Any, None]:
    """`drive` for async code: awaits ``perform(request)``, and appends the machine's value to ``final``.

    (An async generator cannot return a value, hence ``final``.)
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = machine.send(value) if error is None else machine.throw(error)
        except StopIteration as stop:
            final.append(stop.value)
            return
        value = error = None
        try:
            if request[0] is HAND_OUT:
                yield request[1]
            else:
                value = await perform(request)
        except BaseException as exc:
            error = exc


async def acomplete(machine: Machine, perform: Callable[[tuple], Awaitable[Any]]) -> Any:
    """`complete` for async code."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = machine.send(value) if error is None else machine.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        if request[0] is not HAND_OUT:
            try:
                value = await perform(request)
            except BaseException as exc:
                error = exc
