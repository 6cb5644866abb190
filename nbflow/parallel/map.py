"""Parallel actions: fan a step out into sub-applications, then reduce their final states.

`TaskBasedParallelAction` is the low-level form (you yield `SubGraphTask`
objects); `MapActionsAndStates` runs every action over every state, and
`MapStates` / `MapActions` are its one-action and one-state cases.

``reduce`` receives the final sub-states *as they complete*, each a
`TaskState` whose ``.task`` tells which task produced it. A ``reduce`` that
returns before it has consumed them all ends the step early: the remaining
tasks are cancelled. Failures follow ``on_error``: ``"raise"`` stops at the
first one (raising `TaskFailed`), ``"record"`` hands the failed task's state to
``reduce`` with ``.task.error`` set and goes on. ``retries=N`` retries a
failing task with exponential backoff first.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import inspect
import itertools
import pickle
import queue
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from nbflow.core.actions import Action, ApplicationContext
from nbflow.core.state import State, apply_changes
from nbflow.errors import (
    ActionReturnTypeError,
    RemoteTaskError,
    TaskFailed,
    TasksCancelled,
    WorkerCrashedError,
    summarize_exception,
)
from nbflow.parallel.executors import Executor, resolve_executor
from nbflow.parallel.shipping import Packer, run_shipped
from nbflow.parallel.signatures import call_declared
from nbflow.parallel.tasks import (
    Outcome,
    SubGraphTask,
    TaskInfo,
    TaskState,
    arun_task,
    as_runnable,
    run_task,
    task_app_id,
)
from nbflow.persistence.cache import as_cache
from nbflow.persistence.fingerprint import DigestMemo

__all__ = ["TaskBasedParallelAction", "MapActionsAndStates", "MapStates", "MapActions"]

_HOOK_ARGS = {1: ("state",), 2: ("state", "context"), 3: ("state", "context", "inputs")}
_REDUCE_ARGS = {1: ("states",), 2: ("state", "states")}
_ON_ERROR = ("raise", "record")
_ABSENT = object()


def _check_options(owner: str, on_error: Any, retries: Any) -> None:
    if on_error not in _ON_ERROR:
        msg = f"{owner}(on_error={on_error!r}): on_error is 'raise' (stop at the first failure) or 'record' (keep going; failed tasks reach reduce)."
        raise ValueError(msg)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        msg = f"{owner}(retries={retries!r}): retries is a whole number >= 0."
        raise ValueError(msg)


class TaskBasedParallelAction(Action):
    """A step that runs many sub-applications and reduces their final states.

    Implement ``tasks`` (yield `SubGraphTask` objects) and ``reduce``, and
    declare ``reads`` and ``writes``. Optionally implement ``executor()`` to pick
    where the tasks run (otherwise the application's ``with_executor`` choice,
    else threads).

    Args:
        on_error: ``"raise"`` (the first failure stops the step) or ``"record"``
            (failed tasks reach ``reduce`` with ``.task.error`` set).
        retries: how many times to retry a failing task before giving up on it.
        retry_backoff_s: the delay before the first retry, doubled for each next one.
        executor: where the tasks run; overrides the application's executor.
        cache: skip tasks computed before: True (a ``.nbflow-cache`` folder in the
            working directory), a directory, a persister, or a `ResultCache`.
    """

    on_error: str = "raise"
    retries: int = 0
    retry_backoff_s: float = 0.1
    cache: Any = None
    # Sweeps turn every failure into a row before deciding whether to stop; other actions'
    # reduce sees failures only with on_error="record".
    _reduce_sees_failures: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Options declared on the class are checked when the class is made, as the constructor's are.
        _check_options(cls.__name__, cls.on_error, cls.retries)

    def __init__(
        self,
        *,
        on_error: str | None = None,
        retries: int | None = None,
        retry_backoff_s: float | None = None,
        executor: Any = None,
        cache: Any = None,
    ):
        # Each option not given here keeps what the class declares (on_error = "record" on a subclass).
        on_error = type(self).on_error if on_error is None else on_error
        retries = type(self).retries if retries is None else retries
        _check_options(type(self).__name__, on_error, retries)
        self.on_error = on_error
        self.retries = retries
        if retry_backoff_s is not None:
            self.retry_backoff_s = retry_backoff_s
        if executor is not None:
            self.executor = executor
        self.cache = as_cache(cache if cache is not None else type(self).cache)

    # -- what subclasses implement -----------------------------------------------------------

    def tasks(self, state: State, context: ApplicationContext, inputs: dict) -> Iterable[SubGraphTask]:
        """Yield the `SubGraphTask` objects to run."""
        msg = f"{type(self).__name__} must implement tasks(self, state, context, inputs) yielding SubGraphTask objects."
        raise NotImplementedError(msg)

    def reduce(self, state: State, states: Iterator[TaskState]) -> State:
        """Combine the final sub-states (in completion order) into a new ``state``."""
        msg = f"{type(self).__name__} must implement reduce(self, state, states) returning a State."
        raise NotImplementedError(msg)

    def executor(self) -> Any:
        """Where the tasks run: an executor, a name such as ``"processes"``, or None to inherit."""
        return None

    def _started(self, run: _Run) -> None:
        """Called once a run of this step has its executor, before ``reduce`` sees any result."""

    def persister(self, context: ApplicationContext | None) -> Any:
        """The sub-applications' persister: ``"cascade"`` (the parent's, the default), None, or a persister."""
        return "cascade"

    def tracker(self, context: ApplicationContext | None) -> Any:
        """The sub-applications' tracker: ``"cascade"`` (the parent's, the default), None, or a tracker."""
        return "cascade"

    # -- cancel ------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the running step: drop unstarted tasks, reduce the finished ones, raise `TasksCancelled`."""
        for run in list(self._control()):
            run.request_cancel()

    def _control(self) -> set[_Run]:
        # Shared by every copy of this action (with_name copies it into the graph), so cancel()
        # on the object the user holds reaches the copy that runs.
        control = self.__dict__.get("_active_runs")
        if control is None:
            control = self.__dict__["_active_runs"] = set()
        return control

    def _copy(self) -> Action:
        self._control()
        return super()._copy()

    # -- how the engine runs it --------------------------------------------------------------

    @property
    def single_step(self) -> bool:
        return True

    @property
    def is_async(self) -> bool:
        return False

    def _callable(self) -> Callable:
        return self._run

    def _acallable(self) -> Callable:
        return self._arun

    def _executor(self, context: ApplicationContext | None, for_async: bool) -> Executor:
        own = self.executor
        if callable(own) and not isinstance(own, Executor):
            own = own()
        spec = own if own is not None else (context.executor if context else None)
        return resolve_executor(spec, for_async=for_async)

    def _run(self, state: State, __context: ApplicationContext | None = None, **inputs: Any) -> State:
        run = _Run(self, state, __context, inputs, self._executor(__context, for_async=False))
        self._started(run)
        stream = run.stream()
        try:
            result = call_declared(self.reduce, _REDUCE_ARGS, state=state, states=stream)
        except KeyboardInterrupt as exc:
            run.interrupted = True
            raise run.cancelled_error(None) from exc
        finally:
            stream.close()
            run.close()
        return run.finish(result)

    async def _arun(self, state: State, __context: ApplicationContext | None = None, **inputs: Any) -> State:
        run = _Run(self, state, __context, inputs, self._executor(__context, for_async=True))
        self._started(run)
        stream = run.astream()
        try:
            if inspect.iscoroutinefunction(self.reduce):
                result = await call_declared(self.reduce, _REDUCE_ARGS, state=state, states=stream)
            else:
                # A plain reduce still streams: it runs in a thread, fed through a queue by a
                # task on the loop (one hand-off per state, not one loop round trip each).
                handoff: queue.SimpleQueue = queue.SimpleQueue()
                pump = asyncio.ensure_future(_pump(stream, handoff))
                try:
                    result = await asyncio.to_thread(
                        call_declared, self.reduce, _REDUCE_ARGS, state=state, states=_drain_queue(handoff)
                    )
                finally:
                    pump.cancel()
                    await asyncio.gather(pump, return_exceptions=True)
        finally:
            await stream.aclose()
            run.close()
        return run.finish(result)


_END = object()


async def _pump(stream: AsyncIterator, handoff: queue.SimpleQueue) -> None:
    try:
        async for item in stream:
            handoff.put(item)
    except BaseException as exc:
        handoff.put((_END, exc))
        raise
    handoff.put((_END, None))


def _drain_queue(handoff: queue.SimpleQueue) -> Iterator:
    while True:
        item = handoff.get()
        if isinstance(item, tuple) and len(item) == 2 and item[0] is _END:
            if item[1] is not None and not isinstance(item[1], asyncio.CancelledError):
                raise item[1]
            return
        yield item


class _Run:
    """One execution of a parallel step: its tasks in flight, what finished, and how it ended."""

    def __init__(
        self,
        owner: TaskBasedParallelAction,
        state: State,
        context: ApplicationContext | None,
        inputs: dict,
        executor: Executor,
    ):
        self.owner = owner
        self.name = owner.name or type(owner).__name__
        self.state = state
        self.context = _for_sub_applications(owner, context)
        self.inputs = inputs
        self.executor = executor
        self.pending: dict[int, SubGraphTask] = {}
        # Outcomes of tasks finished in this process's threads, until the executor hands them
        # over; after a Ctrl-C they are what the aborted executor would otherwise drop.
        self.completed: dict[int, Outcome] = {}
        self.cache = as_cache(owner.cache)
        self.cache_keys: dict[int, str] = {}
        # Digests of code and shared values, computed once per run (a global may change between runs).
        self.digests = DigestMemo()
        self.cache_salt = self.cache.salt() if self.cache is not None else None
        # With a persister, a task's id carries what it starts from, so a resumed run never
        # takes another point's saved result for its own.
        self.persisted = self.context is not None and self.context.persister is not None
        # Cached results, found while tasks are produced (possibly on an executor's thread).
        self.ready: collections.deque[TaskState] = collections.deque()
        self.finished = 0
        self.dropped = 0
        self.failure: tuple[SubGraphTask, Outcome] | None = None
        self.interrupted = False
        self.cancel_requested = False
        # Set whenever the step stops taking results (done, failed, cancelled, reduce had enough),
        # so that tasks not yet started are skipped.
        self.cancel = threading.Event()
        owner._control().add(self)

    def request_cancel(self) -> None:
        self.cancel_requested = True
        self.cancel.set()

    def close(self) -> None:
        self.cancel.set()
        self.owner._control().discard(self)

    # -- producing tasks ---------------------------------------------------------------------

    def _tasks(self) -> Iterator[SubGraphTask]:
        ctx = self.context
        parent_id = ctx.app_id if ctx else "root"
        seq = ctx.sequence_id if ctx else 0
        produced = call_declared(
            self.owner.tasks, _HOOK_ARGS, state=self.state, context=ctx, inputs=self.inputs
        )
        for position, task in enumerate(produced or ()):
            if self.cancel.is_set():
                return
            if not isinstance(task, SubGraphTask):
                msg = f"{type(self.owner).__name__}.tasks() of {self.name!r} yielded {type(task).__name__} at position {position}; it must yield SubGraphTask(action=..., state=...) objects."
                raise TypeError(msg)
            task.index = position
            start = None
            if self.cache is not None:
                start = self.digests.task(task.graph.reads, task.inputs, task.state)
            elif self.persisted and task.application_id is None:
                start = self.digests.task(task.graph.reads, task.inputs, task.state, strict=False)
            if task.application_id is None:
                task.application_id = task_app_id(
                    parent_id, seq, self.name, position, start if self.persisted else None
                )
            if self.cache is not None and self._from_cache(task, start):
                continue
            self.pending[position] = task
            yield task

    def code_key(self, graph: Any) -> str:
        """The code fingerprint of ``graph`` for this run."""
        return self.digests.code(graph)

    def _from_cache(self, task: SubGraphTask, start: str) -> bool:
        key = self.cache.task_key(self.code_key(task.graph), self.cache_salt, start)
        written = self.cache.get(key)
        if written is None:
            self.cache_keys[task.index] = key
            return False
        self.finished += 1
        self.ready.append(TaskState.of(task.state.update(**written), _info(task, attempts=0, cached=True)))
        return True

    def _to_cache(self, task: SubGraphTask, outcome: Outcome) -> None:
        key = self.cache_keys.pop(task.index, None)
        if key is None or outcome.error is not None:
            return
        written = {k: v for k, v in outcome.state._raw().items() if task.state.get(k, _ABSENT) is not v}
        try:
            self.cache.put(key, written, task.graph.name)
        except Exception as exc:
            # The result is in hand; failing to cache it must not lose it.
            warnings.warn(f"Task {task.index} of {self.name!r} was not cached: {exc}", stacklevel=2)

    def _lost_kwarg(self) -> dict:
        # Worker processes can die; only executors that have them are asked to report it.
        return {"lost": self._lost} if self.executor.ships_tasks else {}

    def _lost(self, args: tuple, error: BaseException) -> Outcome:
        """The result of a task whose worker process died twice while running it: a failure."""
        index = args[0]
        task = self.pending[index]
        msg = f"Task {index} of {self.name!r} ({task.describe()}) took its worker process down twice ({type(error).__name__}: {error}); it is recorded as failed and the other tasks went on. Look for a crash in native code, or memory use past the machine's limit."
        return Outcome(index, None, 2, 0.0, WorkerCrashedError(msg))

    def _drain(self) -> Iterator[TaskState]:
        while self.ready:
            yield self.ready.popleft()

    def _calls(self) -> tuple[Callable, Iterator[tuple]]:
        parent = self.context
        if self.executor.ships_tasks:
            # Nested parallel actions inside a worker process run on threads there.
            shipped_parent = _replace_executor(parent, None)
            share = self.executor.share if self.executor.shares_values else None
            # What every task may carry from this step: its state and inputs (large ones are shared).
            common = itertools.chain(self.state._raw().values(), self.inputs.values()) if share else ()
            packer = Packer(
                self.name, shipped_parent, self.owner.retries, self.owner.retry_backoff_s, share, common
            )
            return run_shipped, (packer.pack(t) for t in self._tasks())
        fn = arun_task if self.executor.is_async else functools.partial(_noting, self.completed)
        retries, backoff = self.owner.retries, self.owner.retry_backoff_s
        items = (
            (t.graph, t.state, t.inputs, t.application_id, t.index, parent, retries, backoff, self.cancel)
            for t in self._tasks()
        )
        return fn, items

    # -- consuming results -------------------------------------------------------------------

    def _accept(self, raw: Any) -> TaskState | None:
        """The sub-state for ``reduce`` from one result; None to skip it. Sets ``failure`` to stop."""
        # Shipped tasks come back as (index, bytes) holding only the keys they changed.
        outcome: Outcome = raw if isinstance(raw, Outcome) else self._unpickle(*raw)
        self.completed.pop(outcome.index, None)
        task = self.pending.pop(outcome.index)
        if outcome.changes is not None:
            outcome.state = apply_changes(task.state, *outcome.changes)
        if outcome.cancelled:
            self.dropped += 1
            return None
        info = _info(
            task,
            attempts=outcome.attempts,
            duration_s=outcome.duration_s,
            error=outcome.error,
            traceback=outcome.traceback,
            resumed=outcome.resumed,
        )
        if self.cache is not None:
            self._to_cache(task, outcome)
        if (
            outcome.error is not None
            and self.owner.on_error == "raise"
            and not self.owner._reduce_sees_failures
        ):
            self.failure = (task, outcome)
            return None
        self.finished += 1
        return TaskState.of(outcome.state if outcome.state is not None else task.state, info)

    def _unpickle(self, index: int, blob: bytes) -> Outcome:
        try:
            return pickle.loads(blob)
        except Exception as exc:
            # The worker checks that its result loads again, so this is a rare case (a class that
            # exists in the worker only): the task becomes a failure rather than ending the step.
            task = self.pending[index]
            msg = f"Task {index} of {self.name!r} ({task.describe()}) finished in its worker, but its result could not be rebuilt here ({type(exc).__name__}: {exc}). Return plain values (numbers, strings, dicts, arrays) from the task, or use executor='threads'."
            return Outcome(
                index, None, 1, 0.0, RemoteTaskError(msg, type(exc).__name__, type(exc).__module__)
            )

    def stream(self) -> Iterator[TaskState]:
        fn, items = self._calls()
        results = self.executor.map_unordered(fn, items, **self._lost_kwarg())
        try:
            for raw in results:
                yield from self._drain()
                sub = self._accept(raw)
                if sub is not None:
                    yield sub
                if self.failure is not None or self.cancel.is_set():
                    return
            yield from self._drain()
        except KeyboardInterrupt:
            self.interrupted = True
            self.cancel.set()
            # Tasks a thread finished but the executor had not handed over yet: keep them.
            for outcome in list(self.completed.values()):
                sub = self._accept(outcome)
                if sub is not None:
                    yield sub
        finally:
            self.cancel.set()
            results.close()

    async def astream(self) -> AsyncIterator[TaskState]:
        fn, items = self._calls()
        results = self.executor.amap_unordered(fn, items, **self._lost_kwarg())
        try:
            async for raw in results:
                for cached in self._drain():
                    yield cached
                sub = self._accept(raw)
                if sub is not None:
                    yield sub
                if self.failure is not None or self.cancel.is_set():
                    return
            for cached in self._drain():
                yield cached
        finally:
            self.cancel.set()
            await results.aclose()

    # -- how the step ends -------------------------------------------------------------------

    def cancelled_error(self, partial: State | None) -> TasksCancelled:
        why = "by Ctrl-C (KeyboardInterrupt)" if self.interrupted else "by cancel()"
        msg = f"Parallel action {self.name!r} was cancelled {why} after {self.finished} task(s) finished; tasks not yet started were dropped. What reduce made of the finished ones is in exc.partial_state."
        return TasksCancelled(msg, partial_state=partial, finished=self.finished)

    def finish(self, result: Any) -> State:
        if self.failure is not None:
            task, outcome = self.failure
            raise task_failed(
                self.name,
                task.index,
                task.describe(),
                outcome.error,
                outcome.traceback,
                self.finished,
                result,
            )
        if self.interrupted or self.cancel_requested:
            raise self.cancelled_error(result)
        if not isinstance(result, State):
            msg = f"{type(self.owner).__name__}.reduce() of {self.name!r} returned {type(result).__name__}; it must return a State, e.g. `return state.update(results=...)`."
            raise ActionReturnTypeError(msg)
        return result


def task_failed(
    name: str,
    index: int,
    described: str,
    error: BaseException,
    traceback: str | None,
    finished: int,
    partial: Any,
) -> TaskFailed:
    """The `TaskFailed` that ends a step with ``on_error="raise"``, chained to the task's exception."""
    msg = f"Task {index} of {name!r} ({described}) raised {summarize_exception(error)}; {finished} finished result(s) were reduced into exc.partial_state. Pass on_error='record' to keep going past failures, or retries=N to retry them."
    exc = TaskFailed(msg, partial_state=partial, finished=finished, task_index=index)
    if traceback:
        exc.add_note(f"Traceback of task {index}:\n{traceback}")
    exc.__cause__ = error
    return exc


def _noting(completed: dict[int, Outcome], *args: Any) -> Outcome:
    outcome = run_task(*args)
    completed[outcome.index] = outcome
    return outcome


def _info(task: SubGraphTask, **fields: Any) -> TaskInfo:
    return TaskInfo(
        index=task.index,
        application_id=task.application_id,
        action=task.graph.name,
        inputs=task.inputs,
        **{"duration_s": 0.0, **fields},
    )


def _for_sub_applications(
    owner: TaskBasedParallelAction, context: ApplicationContext | None
) -> ApplicationContext | None:
    """The parent context the tasks run under, with the action's persister and tracker choices."""
    if context is None:
        return None
    chosen = {}
    for hook in ("persister", "tracker"):
        value = getattr(owner, hook)
        if inspect.ismethod(value):  # the hook method, rather than an object set on the instance
            value = value(context)
        if value != "cascade":
            chosen[hook] = value
    return dataclasses.replace(context, **chosen) if chosen else context


def _replace_executor(context: ApplicationContext | None, executor: Any) -> ApplicationContext | None:
    if context is None:
        return None
    return dataclasses.replace(context, executor=executor)


def _pairs(items: Iterable[Any]) -> Iterator[tuple[Any, dict]]:
    for item in items or ():
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
            yield item[0], item[1]
        else:
            yield item, {}


class MapActionsAndStates(TaskBasedParallelAction):
    """Runs every action from ``actions()`` over every state from ``states()`` (the full product).

    ``states()`` may yield a `State` or ``(state, inputs)``; ``actions()`` an
    action, an ``@action`` function, a `RunnableGraph`, or ``(action, inputs)``.
    Tasks are numbered state by state, action by action within each state.
    """

    def actions(self, state: State, context: ApplicationContext, inputs: dict) -> Iterable[Any]:
        """Yield the actions (or sub-graphs) to run over each state."""
        msg = f"{type(self).__name__} must implement actions(self, state) yielding actions or RunnableGraphs."
        raise NotImplementedError(msg)

    def states(self, state: State, context: ApplicationContext, inputs: dict) -> Iterable[Any]:
        """Yield the states to run each action over."""
        msg = f"{type(self).__name__} must implement states(self, state) yielding States."
        raise NotImplementedError(msg)

    def tasks(self, state: State, context: ApplicationContext, inputs: dict) -> Iterator[SubGraphTask]:
        offered = {"state": state, "context": context, "inputs": inputs}
        where = f"{type(self).__name__}.actions()"
        actions = [
            (as_runnable(a, where), extra)
            for a, extra in _pairs(call_declared(self.actions, _HOOK_ARGS, **offered))
        ]
        for sub_state, state_inputs in _pairs(call_declared(self.states, _HOOK_ARGS, **offered)):
            if not isinstance(sub_state, State):
                msg = f"{type(self).__name__}.states() yielded {type(sub_state).__name__}; it must yield a State (e.g. state.update(x=...)) or (state, inputs)."
                raise TypeError(msg)
            for graph, action_inputs in actions:
                yield SubGraphTask(action=graph, state=sub_state, inputs={**action_inputs, **state_inputs})


class MapStates(MapActionsAndStates):
    """Runs one action (or sub-graph) from ``action()`` over every state from ``states()``."""

    def action(self, state: State, inputs: dict) -> Any:
        """The action, ``@action`` function or `RunnableGraph` to run over each state."""
        msg = f"{type(self).__name__} must implement action(self) returning an action or RunnableGraph."
        raise NotImplementedError(msg)

    def actions(self, state: State, context: ApplicationContext, inputs: dict) -> Iterable[Any]:
        return [
            call_declared(
                self.action,
                {0: (), 1: ("state",), 2: ("state", "inputs")},
                state=state,
                context=context,
                inputs=inputs,
            )
        ]


class MapActions(MapActionsAndStates):
    """Runs every action (or sub-graph) from ``actions()`` over the one state from ``state()``."""

    def state(self, state: State, inputs: dict) -> Any:
        """The state every action runs over (a `State`, or ``(state, inputs)``)."""
        msg = f"{type(self).__name__} must implement state(self, state) returning a State."
        raise NotImplementedError(msg)

    def states(self, state: State, context: ApplicationContext, inputs: dict) -> Iterable[Any]:
        return [call_declared(self.state, _HOOK_ARGS, state=state, context=context, inputs=inputs)]
