"""What a drawing can know about a parallel action before it runs.

A parallel action makes its tasks from the state it runs on, so what it fans
out to is not always known up front. Known without a state: a `RunConcurrent`'s
items, the target graph of a `Sweep` (any parallel action whose ``graph``
attribute is a `RunnableGraph`), and what a map's ``action()`` or ``actions()``
returns when that hook takes no arguments. Hooks that take arguments are never
called: they may need a state, and drawing must not run user code that does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from nbflow.parallel.concurrent import RunConcurrent
from nbflow.parallel.map import MapActionsAndStates, MapStates, TaskBasedParallelAction
from nbflow.parallel.tasks import RunnableGraph, as_runnable

__all__ = ["branches", "task_total"]

_UNKNOWN = object()


def branches(act: TaskBasedParallelAction) -> list[RunnableGraph] | None:
    """The sub-graphs ``act`` fans out to, or None when they depend on the state it runs on."""
    if isinstance(act, RunConcurrent):
        return list(act.items)
    graph = getattr(act, "graph", None)
    if isinstance(graph, RunnableGraph):
        return [graph]
    if isinstance(act, MapStates):
        made = _call_without_arguments(act.action)
        return None if made is _UNKNOWN else _runnables([made])
    if isinstance(act, MapActionsAndStates):
        made = _call_without_arguments(act.actions)
        return None if made is _UNKNOWN else _runnables(made)
    return None


def task_total(act: TaskBasedParallelAction) -> int | None:
    """How many tasks ``act`` will run, when that is known before it runs.

    A `RunConcurrent` runs one task per item; a parallel action that defines
    ``__len__`` (a `Sweep` does: one task per grid point) says so itself.
    """
    if isinstance(act, RunConcurrent):
        return len(act.items)
    if callable(getattr(type(act), "__len__", None)):
        try:
            return len(act)
        except Exception:
            # Asked from a hook: an odd __len__ must not fail the step it watches.
            return None
    return None


def _call_without_arguments(hook: Callable) -> Any:
    try:
        takes_none = not inspect.signature(hook).parameters
    except (TypeError, ValueError):
        return _UNKNOWN
    if not takes_none:
        return _UNKNOWN
    try:
        return hook()
    except Exception:
        # The hook may still work in a running application (it could read a global set
        # later); the drawing just falls back to a generic "tasks" node.
        return _UNKNOWN


def _runnables(items: Any) -> list[RunnableGraph] | None:
    try:
        found = []
        for item in items or ():
            # actions() may yield (action, inputs) pairs.
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
                item = item[0]
            found.append(as_runnable(item, "actions()"))
    except Exception:
        # Iterating runs the user's generator; a bad item means "unknown", not a failed drawing.
        return None
    return found or None
