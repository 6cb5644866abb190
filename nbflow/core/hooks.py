"""Lifecycle hooks: the one seam where persistence, tracking and progress attach to a run.

Subclass `LifecycleHook` and override what you need. The engine calls each
method with keyword arguments only, so a hook that also takes ``**kwargs``
keeps working when later versions pass more. In the async API a hook method
may be a coroutine function; it is awaited.

Hooks and trackers written for Apache Burr work too: an object with Burr's hook
methods (``pre_run_step``, ``post_run_step``, ``post_application_create``,
``pre_run_execute_call``, ``post_run_execute_call``), such as a subclass of the
Burr-named bases here (`PreRunStepHook`, `PostRunStepHook` and their ``Async``
forms), is called with Burr's keyword arguments (`as_hook`). A tracker that has a
``copy()`` method gets a copy for each sub-application, as in Burr.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nbflow.errors import AsyncActionError

__all__ = [
    "LifecycleHook", "HookGroup", "as_hook", "ParentPointer",
    "PreRunStepHook", "PostRunStepHook", "PreRunStepHookAsync", "PostRunStepHookAsync",
    "PostApplicationCreateHook", "PreApplicationExecuteCallHook", "PostApplicationExecuteCallHook",
]  # fmt: skip


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

    # A parallel step's driver tells its tracker about its tasks (see StepRun); hooks that do
    # not count tasks do not have these methods.
    def task_finished(self, **kwargs: Any) -> None:
        _tell(self.hooks, "task_finished", kwargs)

    def tasks_known(self, **kwargs: Any) -> None:
        _tell(self.hooks, "tasks_known", kwargs)


def _tell(hooks: Sequence[Any], method: str, kwargs: dict) -> None:
    for hook in hooks:
        told = getattr(hook, method, None)
        if told is not None:
            told(**kwargs)


def fire(hooks: Sequence[LifecycleHook], method: str, **kwargs: Any) -> None:
    for hook in hooks:
        out = getattr(hook, method)(**kwargs)
        if inspect.isawaitable(out):
            out.close()
            name = type(getattr(hook, "hook", hook)).__name__
            msg = f"Hook {name} is async (its {method} is a coroutine), so it only runs under the async API: use await app.arun(...) / app.astep(), or make the hook's method a plain def."
            raise AsyncActionError(msg)


async def afire(hooks: Sequence[LifecycleHook], method: str, **kwargs: Any) -> None:
    for hook in hooks:
        out = getattr(hook, method)(**kwargs)
        if inspect.isawaitable(out):
            await out


# -- Apache Burr's hooks -------------------------------------------------------------------------


@dataclass(frozen=True)
class ParentPointer:
    """The application a sub-application was started from (Burr's ``burr_types.ParentPointer``)."""

    app_id: str
    partition_key: str | None
    sequence_id: int | None


class PreRunStepHook:
    """Burr's hook before each step: override ``pre_run_step(*, app_id, partition_key, sequence_id, state, action, inputs, **future_kwargs)``."""

    def pre_run_step(self, **kwargs: Any) -> None:
        """Before a step runs."""


class PostRunStepHook:
    """Burr's hook after each step: override ``post_run_step(*, app_id, partition_key, sequence_id, state, action, result, exception, **future_kwargs)``."""

    def post_run_step(self, **kwargs: Any) -> None:
        """After a step ran (``exception`` set if it raised)."""


class PreRunStepHookAsync:
    """`PreRunStepHook` for the async API: ``async def pre_run_step(...)``."""

    async def pre_run_step(self, **kwargs: Any) -> None:
        """Before a step runs."""


class PostRunStepHookAsync:
    """`PostRunStepHook` for the async API: ``async def post_run_step(...)``."""

    async def post_run_step(self, **kwargs: Any) -> None:
        """After a step ran."""


class PostApplicationCreateHook:
    """Burr's hook when an application (or sub-application) starts: ``post_application_create(*, app_id, partition_key, state, application_graph, parent_pointer, spawning_parent_pointer, **future_kwargs)``."""

    def post_application_create(self, **kwargs: Any) -> None:
        """When an application first runs."""


class PreApplicationExecuteCallHook:
    """Burr's hook before ``run``/``iterate``/``step``: ``pre_run_execute_call(*, app_id, partition_key, state, method, **future_kwargs)``."""

    def pre_run_execute_call(self, **kwargs: Any) -> None:
        """Before a run."""


class PostApplicationExecuteCallHook:
    """Burr's hook after ``run``/``iterate``/``step``: ``post_run_execute_call(*, app_id, partition_key, state, method, exception, **future_kwargs)``."""

    def post_run_execute_call(self, **kwargs: Any) -> None:
        """After a run."""


_BURR_METHODS = (
    "pre_run_step",
    "post_run_step",
    "post_application_create",
    "pre_run_execute_call",
    "post_run_execute_call",
)


class _BurrHooks(LifecycleHook):
    """A Burr-style hook or tracker, called through nbflow's hooks with Burr's keyword arguments."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook
        self._created: set[str] = set()

    def _call(self, hook_method: str, **kwargs: Any) -> Any:
        found = getattr(self.hook, hook_method, None)
        return None if found is None else found(**kwargs)

    def pre_run(self, *, app: Any, **kwargs: Any) -> Any:
        if app.app_id not in self._created:
            self._created.add(app.app_id)
            parent = app.parent
            self._call(
                "post_application_create",
                app_id=app.app_id,
                partition_key=app.partition_key,
                state=app.state,
                application_graph=app.graph,
                parent_pointer=None,
                spawning_parent_pointer=ParentPointer(parent.app_id, parent.partition_key, parent.sequence_id)
                if parent is not None
                else None,
            )
        return self._call(
            "pre_run_execute_call",
            app_id=app.app_id,
            partition_key=app.partition_key,
            state=app.state,
            method="run",
        )

    def post_run(self, *, app: Any, exception: BaseException | None, **kwargs: Any) -> Any:
        return self._call(
            "post_run_execute_call",
            app_id=app.app_id,
            partition_key=app.partition_key,
            state=app.state,
            method="run",
            exception=exception,
        )

    def pre_step(
        self, *, app: Any, action: Any, state: Any, inputs: dict, sequence_id: int, **kwargs: Any
    ) -> Any:
        return self._call(
            "pre_run_step",
            app_id=app.app_id,
            partition_key=app.partition_key,
            sequence_id=sequence_id,
            state=state,
            action=action,
            inputs=inputs,
        )

    def post_step(
        self,
        *,
        app: Any,
        action: Any,
        state: Any,
        result: Any,
        exception: BaseException | None,
        sequence_id: int,
        **kwargs: Any,
    ) -> Any:
        return self._call(
            "post_run_step",
            app_id=app.app_id,
            partition_key=app.partition_key,
            sequence_id=sequence_id,
            state=state,
            action=action,
            result=result,
            exception=exception,
        )


class _CopyableBurrHooks(_BurrHooks):
    def copy(self) -> _BurrHooks:
        """A copy for a sub-application: what the wrapped tracker's own ``copy()`` gives."""
        return as_hook(self.hook.copy())


def as_hook(obj: Any) -> LifecycleHook | None:
    """``obj`` as a `LifecycleHook`: itself, or a Burr-style hook wrapped; None if it is neither."""
    if isinstance(obj, LifecycleHook):
        return obj
    if any(callable(getattr(obj, m, None)) for m in _BURR_METHODS):
        return _CopyableBurrHooks(obj) if callable(getattr(obj, "copy", None)) else _BurrHooks(obj)
    return None
