"""`PerAttempt`: what one attempt of a task collects while it runs, found through a context variable.

The variable is set where the attempt runs: a thread, a worker process or an asyncio task (each
asyncio task has its own context, and a synchronous task handed to a thread takes a copy along).
Code running inside the point finds its collector there, wherever the executor put it.
"""

from __future__ import annotations

import contextvars
from typing import Any, ClassVar, NamedTuple

__all__ = ["PerAttempt", "Collect", "NOTHING_MORE"]


class Collect(NamedTuple):
    """What each attempt of a step's tasks collects beyond its state, as the step asks."""

    # Keep what it prints with its result (see nbflow.parallel.capture).
    output: bool = False
    # The key of the driver's listener its reports go to as they are made (see nbflow.parallel.reporting).
    listen: str | None = None


NOTHING_MORE = Collect()


class PerAttempt:
    """Set in ``current`` for the attempt it collects for, and restored after it."""

    __slots__ = ("_token",)
    current: ClassVar[contextvars.ContextVar]

    def __init__(self) -> None:
        self._token: contextvars.Token | None = None

    def __enter__(self) -> Any:
        self._token = self.current.set(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._token is None:
            return
        # Reset, not cleared: a point that runs a sweep of its own goes on collecting to its own.
        try:
            self.current.reset(self._token)
        except ValueError:
            self.current.set(None)  # resumed in another context than it began in: nothing to restore
