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
    >>> result_of(driven)
    'done'
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, NamedTuple

__all__ = ["HAND_OUT", "drive", "adrive", "result_of", "aresult_of"]

HAND_OUT = "hand out"

Machine = Generator[tuple, Any, Any]


def drive(machine: Machine, perform: Callable[[tuple], Any]) -> Generator[Any, None, Any]:
    """Run ``machine``, calling ``perform(request)`` for each request; yield what it hands out.

    Returns (as a generator's value) what the machine returns.
    """
    value: Any = None
    error: BaseException | None = None
    while not isinstance(request := _advance(machine, value, error), _Done):
        value = error = None
        try:
            if request[0] == HAND_OUT:
                yield request[1]
            else:
                value = perform(request)
        except BaseException as exc:
            error = exc
    return request.value


async def adrive(
    machine: Machine, perform: Callable[[tuple], Awaitable[Any]], final: list
) -> AsyncGenerator[Any, None]:
    """`drive` for async code: awaits ``perform(request)``, and appends the machine's value to ``final``.

    (An async generator cannot return a value, hence ``final``.)
    """
    value: Any = None
    error: BaseException | None = None
    while not isinstance(request := _advance(machine, value, error), _Done):
        value = error = None
        try:
            if request[0] == HAND_OUT:
                yield request[1]
            else:
                value = await perform(request)
        except BaseException as exc:
            error = exc
    final.append(request.value)


class _Done(NamedTuple):
    value: Any


def _advance(machine: Machine, value: Any, error: BaseException | None) -> Any:
    """Send ``value`` (or throw ``error``) into ``machine``: its next request, or `_Done` with its value."""
    try:
        return machine.throw(error) if error is not None else machine.send(value)
    except StopIteration as stop:
        return _Done(stop.value)


def result_of(driven: Generator[Any, None, Any]) -> Any:
    """Run a driven machine to its end, passing over what it hands out; its value."""
    while True:
        try:
            next(driven)
        except StopIteration as stop:
            return stop.value


async def aresult_of(machine: Machine, perform: Callable[[tuple], Awaitable[Any]]) -> Any:
    """`result_of` for async code."""
    final: list = []
    async for _ in adrive(machine, perform, final):
        pass
    return final[0]
