"""`StatusTracker`: where each action of a running application stands, for live drawings.

It is a `LifecycleHook` attached like any tracker (``with_tracker(StatusTracker())``,
or `attach_tracker` on an application already built), so it also reaches the
sub-applications a parallel step starts. An action is ``pending`` until a step of
it starts, then ``running``, then ``done`` or ``failed``; its latest step decides.
A parallel step's driver tells it of each task as its result comes in, and of the
total once the last task is made, on every executor (see ``task_finished``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbflow.core.hooks import HookGroup, LifecycleHook

__all__ = ["STATUSES", "ActionStatus", "StatusTracker", "attach_tracker", "attached_tracker"]

STATUSES = ("pending", "running", "done", "failed")


@dataclass(frozen=True)
class ActionStatus:
    """Where one action stands: its latest step and, for a parallel step, its tasks so far.

    Attributes:
        status: ``"pending"``, ``"running"``, ``"done"`` or ``"failed"``.
        sequence_id: the step this refers to (None while pending).
        parallel: whether the action is a parallel one (only those count tasks).
        done: tasks whose sub-application finished without an exception.
        failed: tasks whose sub-application raised (after its retries, if any).
        total: how many tasks the step runs; None while unknown.
    """

    status: str = "pending"
    sequence_id: int | None = None
    parallel: bool = False
    done: int = 0
    failed: int = 0
    total: int | None = None

    @property
    def finished(self) -> int:
        """Tasks finished so far, failed ones included."""
        return self.done + self.failed

    def progress(self) -> str:
        """Tasks finished out of the total, ``?`` for what is unknown: ``"37/50 (2 failed)"``, ``"3/?"``."""
        total = "?" if self.total is None else self.total
        failed = f" ({self.failed} failed)" if self.failed else ""
        return f"{self.finished}/{total}{failed}"


class _Step:
    __slots__ = ("outcomes", "parallel", "sequence_id", "status", "total")

    def __init__(self, sequence_id: int, parallel: bool, total: int | None) -> None:
        self.status = "running"
        self.sequence_id = sequence_id
        self.parallel = parallel
        self.total = total
        # Keyed by task index: a task is told of once, after its last attempt.
        self.outcomes: dict[int, bool] = {}

    def frozen(self) -> ActionStatus:
        done = sum(self.outcomes.values())
        failed = len(self.outcomes) - done
        return ActionStatus(self.status, self.sequence_id, self.parallel, done, failed, self.total)


class StatusTracker(LifecycleHook):
    """Records where each action of an application stands, and counts its parallel steps' tasks.

    Steps of top-level applications are recorded. A parallel step's tasks are
    counted by the step itself, in this process, as their results come in: from
    threads, worker processes, Dask and Ray alike, cache hits included.

    Args:
        on_change: called after each event as ``on_change(event, app)``, with the
            hook's name and the application it concerns, on whichever thread fired it.

    Example:
        >>> from nbflow import ApplicationBuilder, action
        >>> @action(reads=[], writes=["x"])
        ... def one(state):
        ...     return state.update(x=1)
        >>> tracker = StatusTracker()
        >>> app = ApplicationBuilder().with_actions(one=one).with_entrypoint("one").with_tracker(tracker).build()
        >>> _ = app.run()
        >>> tracker.snapshot(app.app_id)["one"].status
        'done'
    """

    def __init__(self, on_change: Callable[[str, Any], None] | None = None) -> None:
        self.on_change = on_change
        self._lock = threading.Lock()
        self._steps: dict[tuple[str, str], _Step] = {}

    def __reduce__(self) -> tuple:
        # A copy in a worker process could never report back to this one, so it travels as
        # a hook that does nothing; applications on process executors still pickle.
        return (LifecycleHook, ())

    def snapshot(self, app_id: str) -> dict[str, ActionStatus]:
        """The status of every action of application ``app_id`` that has run a step, by name."""
        with self._lock:
            return {name: step.frozen() for (owner, name), step in self._steps.items() if owner == app_id}

    # -- the hooks ---------------------------------------------------------------------------

    def pre_run(self, *, app: Any, **kwargs: Any) -> None:
        self._changed("pre_run", app)

    def pre_step(self, *, app: Any, action: Any, sequence_id: int, **kwargs: Any) -> None:
        if app.parent is not None:
            return
        step = _new_step(action, sequence_id)
        with self._lock:
            self._steps[(app.app_id, action.name)] = step
        self._changed("pre_step", app)

    def post_step(
        self, *, app: Any, action: Any, sequence_id: int, exception: BaseException | None, **kwargs: Any
    ) -> None:
        if app.parent is not None:
            return
        key = (app.app_id, action.name)
        with self._lock:
            step = self._steps.get(key)
            if step is None or step.sequence_id != sequence_id:
                # Attached while this step was already running.
                step = self._steps[key] = _new_step(action, sequence_id)
            step.status = "failed" if exception is not None else "done"
            if step.parallel and step.total is None and exception is None:
                # Every task that was going to run has reported by now.
                step.total = len(step.outcomes)
        self._changed("post_step", app)

    def post_run(self, *, app: Any, **kwargs: Any) -> None:
        self._changed("post_run", app)

    def task_finished(self, *, parent: Any, index: int, ok: bool) -> None:
        """Told by a parallel step (``parent`` is its tasks' context): task ``index`` finished."""
        step = self._step_of(parent)
        if step is not None:
            with self._lock:
                step.outcomes[index] = ok
            self._changed("task_finished", None)

    def tasks_known(self, *, parent: Any, total: int) -> None:
        """Told by a parallel step once it made its last task: it runs ``total`` of them."""
        step = self._step_of(parent)
        if step is not None:
            with self._lock:
                step.total = total
            self._changed("tasks_known", None)

    def _step_of(self, parent: Any) -> _Step | None:
        with self._lock:
            step = self._steps.get((parent.app_id, parent.action_name))
        return step if step is not None and step.sequence_id == parent.sequence_id else None

    def _changed(self, event: str, app: Any) -> None:
        if self.on_change is not None:
            self.on_change(event, app)


def _new_step(action: Any, sequence_id: int) -> _Step:
    parallel = action.fan_out is not None
    return _Step(sequence_id, parallel, _task_count(action) if parallel else None)


def _task_count(action: Any) -> int | None:
    try:
        return action.task_count()
    except Exception:
        # Asked from a hook: an odd task_count() (or __len__) must not fail the step it watches.
        return None


def attach_tracker(app: Any, tracker: LifecycleHook) -> Callable[[], None]:
    """Attach ``tracker`` to an application already built, as ``with_tracker`` would have.

    It joins ``app.hooks`` (the application's own steps) and ``app.tracker``
    (what parallel steps pass down to their sub-applications), beside any tracker
    already there.

    Returns:
        A function that detaches it again.
    """
    previous = app.tracker
    combined = tracker if previous is None else HookGroup([previous, tracker])
    app.hooks.append(tracker)
    app.tracker = combined

    def detach() -> None:
        if tracker in app.hooks:
            app.hooks.remove(tracker)
        if app.tracker is combined:
            app.tracker = previous

    return detach


def attached_tracker(app: Any) -> StatusTracker | None:
    """The first `StatusTracker` among an application's hooks, or None."""
    pending = list(app.hooks)
    while pending:
        hook = pending.pop(0)
        if isinstance(hook, StatusTracker):
            return hook
        if isinstance(hook, HookGroup):
            pending[:0] = hook.hooks
    return None
