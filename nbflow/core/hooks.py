"""Lifecycle hooks: the one seam where persistence, tracking and progress attach to a run.

Subclass `LifecycleHook` and override what you need. The engine calls each
method with keyword arguments only, so a hook that also takes ``**kwargs``
keeps working when later versions pass more. In the async API a hook method
may be a coroutine function; it is awaited.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

__all__ = ["LifecycleHook", "HookGroup"]


class LifecycleHook:
    """Callbacks around runs and steps of an `Application`; every method is a no-op here."""

    def pre_run(
        self, *, app: Any, halt_after: list[str], halt_before: list[str], inputs: dict, **kwargs: Any
    ) -> None:
        """Before ``run``/``iterate`` (and their async forms) take their first step."""

    def post_run(
        self,
        *,
        app: Any,
        action: Any,
        result: Any,
        state: Any,
        exception: BaseException | None,
        **kwargs: Any,
    ) -> None:
        """After a run ends: at a halt point, at the end of the graph, or with ``exception``."""

    def pre_step(
        self, *, app: Any, action: Any, state: Any, inputs: dict, sequence_id: int, **kwargs: Any
    ) -> None:
        """Before ``action`` runs on ``state`` as step ``sequence_id``."""

    def post_step(
        self,
        *,
        app: Any,
        action: Any,
        state: Any,
        result: Any,
        exception: BaseException | None,
        sequence_id: int,
        duration_s: float,
        written: dict,
        deleted: list,
        **kwargs: Any,
    ) -> None:
        """After step ``sequence_id``: ``state`` is the new state (the old one if it raised).

        ``written`` maps the keys the step set to their new values; ``deleted`` lists
        the keys it removed.
        """


class HookGroup(LifecycleHook):
    """Several hooks acting as one (for example two trackers passed down to sub-applications)."""

    def __init__(self, hooks: Sequence[LifecycleHook]) -> None:
        self.hooks = list(hooks)

    def pre_run(self, **kwargs: Any) -> None:
        fire(self.hooks, "pre_run", **kwargs)

    def post_run(self, **kwargs: Any) -> None:
        fire(self.hooks, "post_run", **kwargs)

    def pre_step(self, **kwargs: Any) -> None:
        fire(self.hooks, "pre_step", **kwargs)

    def post_step(self, **kwargs: Any) -> None:
        fire(self.hooks, "post_step", **kwargs)


def fire(hooks: Sequence[LifecycleHook], method: str, **kwargs: Any) -> None:
    for hook in hooks:
        getattr(hook, method)(**kwargs)


async def afire(hooks: Sequence[LifecycleHook], method: str, **kwargs: Any) -> None:
    for hook in hooks:
        out = getattr(hook, method)(**kwargs)
        if inspect.isawaitable(out):
            await out
