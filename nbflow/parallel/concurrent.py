"""`RunConcurrent`: several branches over the same state at once, their writes merged.

Each branch (an action, an ``@action`` function or a `RunnableGraph`) starts
from the same immutable input state, so branches cannot see or clobber each
other's work while they run. Afterwards their writes are merged into one new
state. A key written by two branches needs a merge function; without one the
`RunConcurrent` is refused when it is built.

A merge function is called as ``fn(values, before)``: ``values`` holds the
branches' values for the key in the order the branches were given (only
branches that wrote it), and ``before`` is the key's value before the step
(None if it had none). `sum_changes` adds up each branch's change to a
number, so concurrent increments and decrements lose no update.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from nbflow.core.actions import ApplicationContext
from nbflow.core.state import State
from nbflow.errors import GraphError
from nbflow.parallel.map import TaskBasedParallelAction
from nbflow.parallel.tasks import RunnableGraph, SubGraphTask, TaskState, as_runnable

__all__ = ["RunConcurrent", "sum_changes", "concat", "last"]


def sum_changes(values: Sequence[Any], before: Any) -> Any:
    """Merge numbers by adding every branch's change: ``before + sum(v - before)``."""
    base = before if before is not None else 0
    return base + sum(v - base for v in values)


def concat(values: Sequence[Any], before: Any) -> list:
    """Merge lists by appending each branch's new items, in branch order, after ``before``."""
    base = list(before or ())
    merged = list(base)
    for value in values:
        merged.extend(list(value)[len(base) :])
    return merged


def last(values: Sequence[Any], before: Any) -> Any:
    """Merge by taking the value of the last branch (in the order given) that wrote the key."""
    return values[-1]


class RunConcurrent(TaskBasedParallelAction):
    """Runs ``items`` concurrently over the same input state and merges their writes.

    Args:
        name: the action's name (the key in ``with_actions`` wins if they differ).
        items: the branches: actions, ``@action`` functions or `RunnableGraph` objects.
        merge: a merge function per key that more than one branch writes.
        **options: ``on_error``, ``retries``, ``retry_backoff_s``, ``executor``, as
            for every parallel action.

    Raises:
        GraphError: two branches write a key that ``merge`` does not cover.

    Example:
        >>> from nbflow import action
        >>> @action(reads=["count"], writes=["count"])
        ... def up(state):
        ...     return state.update(count=state["count"] + 1)
        >>> @action(reads=["count"], writes=["count"])
        ... def down(state):
        ...     return state.update(count=state["count"] - 1)
        >>> both = RunConcurrent("both", items=[up, down.with_name("down")], merge={"count": sum_changes})
        >>> both.writes
        ['count']
    """

    def __init__(
        self, name: str, items: Iterable[Any], merge: Mapping[str, Callable] | None = None, **options: Any
    ):
        super().__init__(**options)
        self._name = name
        self.items: list[RunnableGraph] = [
            as_runnable(item, f"RunConcurrent({name!r}) items") for item in items
        ]
        if not self.items:
            msg = f"RunConcurrent({name!r}) needs at least one item to run."
            raise GraphError(msg)
        names = [item.name for item in self.items]
        if len(set(names)) != len(names):
            msg = f"RunConcurrent({name!r}) has two items named {next(n for n in names if names.count(n) > 1)!r}; give each a unique name with .with_name('...')."
            raise GraphError(msg)
        self.merge = dict(merge or {})
        writers: dict[str, list[str]] = {}
        for item in self.items:
            for key in item.writes:
                writers.setdefault(key, []).append(item.name)
        for key, who in writers.items():
            if len(who) > 1 and key not in self.merge:
                msg = f"RunConcurrent({name!r}): items {who} all write {key!r}, so their results would clobber each other. Pass merge={{{key!r}: fn}} where fn(values, before) combines them (e.g. nbflow.sum_changes for counters)."
                raise GraphError(msg)
        unknown = [k for k in self.merge if k not in writers]
        if unknown:
            msg = f"RunConcurrent({name!r}): merge names {unknown}, which no item writes. Items write {sorted(writers)}."
            raise GraphError(msg)
        self.reads = list(dict.fromkeys(k for item in self.items for k in item.reads))
        self.writes = sorted(writers)
        self._writers = writers

    fan_out = "concurrent"

    def children(self) -> list[RunnableGraph]:
        return list(self.items)

    def task_count(self) -> int:
        return len(self.items)

    def tasks(self, state: State, context: ApplicationContext, inputs: dict) -> Iterator[SubGraphTask]:
        for item in self.items:
            yield SubGraphTask(action=item, state=state, inputs=inputs)

    def reduce(self, state: State, states: Iterable[TaskState]) -> State:
        by_item = {sub.task.index: sub for sub in states}
        merged = {}
        for key, who in self._writers.items():
            values = [
                by_item[i][key]
                for i, item in enumerate(self.items)
                if item.name in who and i in by_item and by_item[i].task.ok and key in by_item[i]
            ]
            if not values:
                continue
            fn = self.merge.get(key)
            merged[key] = fn(values, state.get(key)) if fn is not None else values[0]
        return state.update(**merged)
