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
import inspect
import math
import queue
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from nbflow.core.actions import Action, ApplicationContext, declared
from nbflow.core.state import State
from nbflow.errors import HookContractError
from nbflow.parallel.executors import Executor
from nbflow.parallel.registry import resolve_executor
from nbflow.parallel.running import HOOK_ARGS, HookRaised, StepRun, iterate_async, task_failed
from nbflow.parallel.signatures import call_declared, takes_parameter
from nbflow.parallel.tasks import RunnableGraph, SubGraphTask, TaskState, as_runnable, copied
from nbflow.persistence.cache import as_cache

__all__ = [
    "TaskBasedParallelAction", "MapActionsAndStates", "MapStates", "MapActions", "map_reduce_action", "task_failed",
]  # fmt: skip

_HOOK_ARGS = HOOK_ARGS
_REDUCE_ARGS = {1: ("states",), 2: ("state", "states")}
_ON_ERROR = ("raise", "record")
# Where each option may be declared, first found first: Burr names the persister hook state_persister.
_OPTION_NAMES = {
    "executor": ("executor",),
    "persister": ("state_persister", "persister"),
    "tracker": ("tracker",),
}
_INHERIT: Any = type("_Inherit", (), {"__repr__": lambda self: "<inherit>"})()


def _call_option(hook: Callable, context: ApplicationContext | None) -> Any:
    try:
        parameters = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):
        return hook()
    if any(p.kind is p.VAR_KEYWORD or p.name == "context" for p in parameters):
        return hook(context=context)
    if any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters):
        return hook(context)
    return hook()


def _check_options(owner: str, on_error: Any, retries: Any, timeout: Any) -> None:
    if on_error not in _ON_ERROR:
        msg = f"{owner}(on_error={on_error!r}): on_error is 'raise' (stop at the first failure) or 'record' (keep going; failed tasks reach reduce)."
        raise ValueError(msg)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        msg = f"{owner}(retries={retries!r}): retries is a whole number >= 0."
        raise ValueError(msg)
    if timeout is not None and (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        msg = f"{owner}(timeout={timeout!r}): timeout is a positive number of seconds each task may run (e.g. timeout=30), or None for no limit."
        raise ValueError(msg)


class TaskBasedParallelAction(Action):
    """A step that runs many sub-applications and reduces their final states.

    Implement ``tasks`` (yield `SubGraphTask` objects) and ``reduce``, and
    declare ``reads`` and ``writes``.

    Where the tasks run, and the persister and tracker their sub-applications
    get, are declared one way: as a class attribute (``executor = "processes"``)
    or as a constructor argument (``MyMap(executor="dask")``), which wins.
    `resolve_option` reads them; it also calls a method of that name, as Apache
    Burr users write them (``def tracker(self, **kwargs)``, ``def
    state_persister(self, **kwargs)``).

    Args:
        on_error: ``"raise"`` (the first failure stops the step) or ``"record"``
            (failed tasks reach ``reduce`` with ``.task.error`` set).
        retries: how many times to retry a failing task before giving up on it.
        retry_backoff_s: the delay before the first retry, doubled for each next one.
        timeout: the most seconds a task may run (each attempt); one that runs longer fails
            with `TaskTimeoutError` (a sweep's ``timeout`` row). A task on a worker process,
            or in the main thread, is stopped; one on a thread is abandoned (Python cannot
            stop a thread) and keeps running in the background until it returns.
        executor: where the tasks run: an executor, a name such as ``"processes"``,
            a function returning one, or None (the default) for the application's
            ``with_executor`` choice, else threads.
        persister: the sub-applications' persister: ``"cascade"`` (the parent's, the
            default), None for none, or a persister.
        tracker: the sub-applications' tracker: ``"cascade"`` (the default), None, or a tracker.
        cache: skip tasks computed before: True (a ``.nbflow-cache`` folder in the
            working directory), a directory, a persister, or a `ResultCache`.
        ordered: hand ``reduce`` the sub-states in task order rather than as they
            complete (a later task that finishes first waits for the earlier ones).
            For a ``reduce`` whose result depends on order. Also a class attribute.

    ``reduce`` may take ``(state, states)`` and return ``state`` updated, or, as in
    Apache Burr's short form, take only ``(states)`` and return one of them updated:
    then the keys the action declares in ``writes`` are taken from what it returns
    and set on the step's state; keys the sub-states carry besides are not written.
    """

    on_error: str = "raise"
    retries: int = 0
    retry_backoff_s: float = 0.1
    timeout: float | None = None
    cache: Any = None
    # Sweeps turn every failure into a row before deciding whether to stop; other actions'
    # reduce sees failures only with on_error="record".
    _reduce_sees_failures: bool = False
    # Keep the finished sub-states while reduce runs, to hand them over if reduce raises.
    _keep_finished: bool = True
    # Whether tasks() makes every task without waiting on this step's own results (a grid does;
    # a search that asks for the next point as results come in does not). Only then are tasks
    # gathered ahead, to look them up in the cache in batches.
    _tasks_ahead: bool = False
    # Keep what each task prints with its result (see nbflow.parallel.capture) instead of letting
    # it reach the cell; sweeps do, other actions' output goes where it always went.
    capture_output: bool = False
    # Hear each task's reports as they are made, in `_heard_report` (a sweep's live view does).
    _hears_reports: bool = False
    # Whether tasks() waits for results before making the next task (an adaptive search asks for
    # the next point once one finishes). Then each task starts the moment it is made, results are
    # heard in `_settled` as they come (cache hits included), and the executor is never asked to
    # pull tasks ahead: a pull that waited on results behind it would wait forever.
    _waits_on_results: bool = False
    # Whether `_heard_report` may answer that a task should stop (a search that prunes).
    _stops_tasks: bool = False
    ordered: bool = False
    executor: Any = None
    persister: Any = "cascade"
    tracker: Any = "cascade"
    fan_out = "each task"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Options declared on the class are checked when the class is made, as the constructor's are.
        _check_options(cls.__name__, cls.on_error, cls.retries, cls.timeout)

    def __init__(
        self,
        *,
        on_error: str | None = None,
        retries: int | None = None,
        retry_backoff_s: float | None = None,
        timeout: float | None = None,
        executor: Any = None,
        cache: Any = None,
        ordered: bool | None = None,
        persister: Any = _INHERIT,
        tracker: Any = _INHERIT,
    ):
        # Each option not given here keeps what the class declares (on_error = "record" on a subclass).
        on_error = type(self).on_error if on_error is None else on_error
        retries = type(self).retries if retries is None else retries
        timeout = type(self).timeout if timeout is None else timeout
        _check_options(type(self).__name__, on_error, retries, timeout)
        self.on_error = on_error
        self.retries = retries
        self.timeout = timeout
        if ordered is not None:
            self.ordered = bool(ordered)
        if retry_backoff_s is not None:
            self.retry_backoff_s = retry_backoff_s
        if executor is not None:
            self.executor = executor
        if persister is not _INHERIT:
            self.persister = persister
        if tracker is not _INHERIT:
            self.tracker = tracker
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

    def _started(self, run: StepRun) -> None:
        """Called once a run of this step has its executor, before ``reduce`` sees any result."""

    def _heard_report(self, run: StepRun, report: tuple) -> bool | None:
        """With ``_hears_reports``: ``(task index, step, metrics, attempt)`` from a task of ``run``, from any thread.

        A later attempt's reports replace an earlier one's; an earlier attempt abandoned past its
        timeout may go on reporting after. A report may also arrive after the task's result,
        when it came through the channel: the result's reports are the task's own. With
        ``_stops_tasks``, a true return stops the task: its ``report`` raises `Pruned`.
        """

    def _settled(self, run: StepRun, sub: TaskState) -> None:
        """With ``_waits_on_results``: a task's final sub-state, the moment the step has it.

        Called from the step's driver threads, before ``reduce`` sees the sub-state; cache hits
        too, which the producer finds.
        """

    def resolve_option(self, option: str, context: ApplicationContext | None = None) -> Any:
        """What this action declares for ``option``: ``"executor"``, ``"persister"`` or ``"tracker"``.

        The constructor argument, else the class attribute. A method of that name
        (or Burr's ``state_persister`` for the persister) is called instead, with
        ``context=`` when it takes it; a function given as ``executor`` is called too.

        Example:
            >>> class Quiet(MapStates):
            ...     tracker = None
            >>> Quiet().resolve_option("tracker"), Quiet(tracker="cascade").resolve_option("tracker")
            (None, 'cascade')
        """
        names = _OPTION_NAMES.get(option)
        if names is None:
            msg = (
                f"{type(self).__name__}.resolve_option({option!r}): the options are {sorted(_OPTION_NAMES)}."
            )
            raise ValueError(msg)
        for name in names:
            raw = inspect.getattr_static(self, name, _INHERIT)
            if raw is _INHERIT:
                continue
            value = getattr(self, name)
            if (
                inspect.isfunction(raw)
                or isinstance(raw, (staticmethod, classmethod))
                or (option == "executor" and callable(value) and not isinstance(value, (Executor, type)))
            ):
                value = _call_option(value, context)
            return value
        return None

    def children(self) -> list[RunnableGraph] | None:
        """None: the sub-graphs come from ``tasks()``, which needs the state the step runs on."""
        return None

    def task_count(self) -> int | None:
        """``len(self)`` for an action that defines ``__len__`` (a `Sweep`: one task per point)."""
        return len(self) if callable(getattr(type(self), "__len__", None)) else None

    # -- cancel ------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the running step: drop unstarted tasks, reduce the finished ones, raise `TasksCancelled`."""
        for run in list(self._control()):
            run.request_cancel()

    def _control(self) -> set[StepRun]:
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
        own = self.resolve_option("executor", context)
        spec = own if own is not None else (context.executor if context else None)
        return resolve_executor(spec, for_async=for_async)

    def _merged(self, state: State, result: Any) -> Any:
        """What a short-form ``reduce(states)`` returned, as the step's state: its declared writes set on ``state``."""
        if not isinstance(result, State) or takes_parameter(self.reduce, "state"):
            return result
        return state.merge({k: result[k] for k in declared(self, "writes") if k in result})

    def _begin(
        self, state: State, context: ApplicationContext | None, inputs: dict, for_async: bool
    ) -> StepRun:
        run = StepRun(self, state, context, inputs, self._executor(context, for_async=for_async))
        try:
            self._started(run)
        except BaseException:
            run.close()  # it registered a control and a listener, which would outlive it
            raise
        return run

    def _run(self, state: State, __context: ApplicationContext | None = None, **inputs: Any) -> State:
        run = self._begin(state, __context, inputs, for_async=False)
        stream = run.stream()
        try:
            result = self._merged(state, call_declared(self.reduce, _REDUCE_ARGS, state=state, states=stream))
        except BaseException as exc:
            failure = run.reduce_failed(exc)
            if failure is exc:
                raise
            raise failure from exc
        finally:
            stream.close()
            run.close()
        return run.finish(result)

    async def _arun(self, state: State, __context: ApplicationContext | None = None, **inputs: Any) -> State:
        run = self._begin(state, __context, inputs, for_async=True)
        stream = run.astream()
        try:
            if inspect.iscoroutinefunction(self.reduce):
                result = await call_declared(self.reduce, _REDUCE_ARGS, state=state, states=stream)
                result = self._merged(state, result)
            else:
                # A plain reduce still streams: it runs in a thread, fed through a queue by a
                # task on the loop (one hand-off per state, not one loop round trip each).
                handoff: queue.SimpleQueue = queue.SimpleQueue()
                pump = asyncio.ensure_future(_pump(stream, handoff))
                try:
                    result = await asyncio.to_thread(
                        call_declared, self.reduce, _REDUCE_ARGS, state=state, states=_drain_queue(handoff)
                    )
                    result = self._merged(state, result)
                finally:
                    pump.cancel()
                    await asyncio.gather(pump, return_exceptions=True)
        except BaseException as exc:
            failure = run.reduce_failed(exc)
            if failure is exc:
                raise
            raise failure from exc
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


def _pairs(items: Iterable[Any]) -> Iterator[tuple[Any, dict]]:
    for item in items or ():
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
            yield item[0], item[1]
        else:
            yield item, {}


def _cascaded(context: ApplicationContext | None) -> dict:
    """What a task inherits, as Burr's tasks carry it: the tracker (its copy, if it can copy itself),
    the persister, and the loader (the same instance when the parent's is)."""
    if context is None:
        return {}
    return {
        "tracker": copied(context.tracker),
        "state_persister": context.persister,
        "state_initializer": context.state_initializer,
    }


def _runnables_without_arguments(
    hook: Callable[[], Iterable[Any]], signature_of: Callable | None = None
) -> list[RunnableGraph] | None:
    """The sub-graphs a hook gives when it takes no arguments; None when it does, or fails.

    A hook that takes arguments is never called (it may need a state), nor is what it
    gives allowed to fail a drawing: that only means the sub-graphs are not known.
    """
    try:
        if inspect.signature(signature_of or hook).parameters:
            return None
    except (TypeError, ValueError):
        return None
    try:
        return [as_runnable(item, "actions()") for item, _ in _pairs(hook())] or None
    except Exception:
        return None


def _guarded(hook: str, call: Callable[[], Iterable[Any]]) -> Iterator[Any]:
    """The items a user hook gives (an async generator too); its own exceptions come out as `HookRaised`."""
    try:
        given = call()
        iterator = iterate_async(given) if inspect.isasyncgen(given) else iter(given or ())
    except Exception as exc:
        raise HookRaised(hook, exc) from exc
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise HookRaised(hook, exc) from exc
        yield item


class MapActionsAndStates(TaskBasedParallelAction):
    """Runs every action from ``actions()`` over every state from ``states()`` (the full product).

    ``states()`` may yield a `State` or ``(state, inputs)``; ``actions()`` an
    action, an ``@action`` function, a `RunnableGraph`, or ``(action, inputs)``.
    Either may be an async generator. Tasks are numbered action by action, and
    state by state within each action, as Apache Burr numbers them.
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
            for a, extra in _pairs(
                _guarded("actions", lambda: call_declared(self.actions, _HOOK_ARGS, **offered))
            )
        ]
        states = self._checked(
            _pairs(_guarded("states", lambda: call_declared(self.states, _HOOK_ARGS, **offered)))
        )
        if len(actions) != 1:
            # Each action runs over every state: read the states once. One action (MapStates)
            # streams them instead, so a million states never sit in memory.
            states = list(states)
        for graph, action_inputs in actions:
            for sub_state, state_inputs in states:
                yield SubGraphTask(
                    action=graph,
                    state=sub_state,
                    inputs={**action_inputs, **state_inputs},
                    **_cascaded(context),
                )

    def children(self) -> list[RunnableGraph] | None:
        """What ``actions()`` gives, when it takes no arguments (one that does may need a state)."""
        return _runnables_without_arguments(self.actions)

    def _checked(self, states: Iterable[tuple[Any, dict]]) -> Iterator[tuple[State, dict]]:
        for sub_state, state_inputs in states:
            if not isinstance(sub_state, State):
                msg = f"{type(self).__name__}.states() yielded {type(sub_state).__name__}; it must yield a State (e.g. state.update(x=...)) or (state, inputs)."
                raise HookContractError(msg)
            yield sub_state, state_inputs


class MapStates(MapActionsAndStates):
    """Runs one action (or sub-graph) from ``action()`` over every state from ``states()``."""

    def action(self, state: State, inputs: dict) -> Any:
        """The action, ``@action`` function or `RunnableGraph` to run over each state."""
        msg = f"{type(self).__name__} must implement action(self) returning an action or RunnableGraph."
        raise NotImplementedError(msg)

    def children(self) -> list[RunnableGraph] | None:
        """What ``action()`` gives, when it takes no arguments."""
        return _runnables_without_arguments(lambda: [self.action()], self.action)

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
        """The state every action runs over (a `State`, or ``(state, inputs)``); by default the state as it is."""
        return state

    def states(self, state: State, context: ApplicationContext, inputs: dict) -> Iterable[Any]:
        return [call_declared(self.state, _HOOK_ARGS, state=state, context=context, inputs=inputs)]


class _FunctionsMap(MapActionsAndStates):
    """A map made of plain functions, by `map_reduce_action`."""

    def __init__(
        self,
        action: Any,
        state: Callable[..., Any],
        reducer: Callable[[State, Any], State],
        reads: Iterable[str],
        writes: Iterable[str],
        inputs: Iterable[str],
    ) -> None:
        super().__init__()
        self._actions_given, self._states_given, self._reducer = action, state, reducer
        self.reads, self.writes, self.input_names = list(reads), list(writes), list(inputs)

    def actions(self, state: State, context: ApplicationContext, inputs: dict) -> Any:
        given = self._actions_given
        if isinstance(given, (list, tuple)):
            return list(given)
        if isinstance(given, (Action, RunnableGraph)):
            return [given]
        return given(state, context, inputs)

    def states(self, state: State, context: ApplicationContext, inputs: dict) -> Any:
        given = self._states_given(state, context, inputs)
        return [given] if isinstance(given, State) else given

    def reduce(self, state: State, states: Any) -> Any:
        return self._reducer(state, states)


def map_reduce_action(
    action: Any,
    state: Callable[..., Any],
    reducer: Callable[[State, Any], State],
    reads: Iterable[str],
    writes: Iterable[str],
    inputs: Iterable[str] = (),
) -> MapActionsAndStates:
    """A parallel action from functions, as Apache Burr's ``map_reduce_action`` makes one.

    Args:
        action: the action (or sub-graph) to run, a list of them, or a function
            ``(state, context, inputs)`` yielding them.
        state: a function ``(state, context, inputs)`` giving the states to run over
            (one `State`, or an iterable of them; an async generator too).
        reducer: ``(state, states) -> State``, combining the finished sub-states.
        reads: the state keys the step reads.
        writes: the state keys the step writes.
        inputs: the inputs the step takes (kept for Burr's signature).

    Example:
        >>> from nbflow import action, ApplicationBuilder
        >>> @action(reads=["x"], writes=["y"])
        ... def double(state):
        ...     return state.update(y=state["x"] * 2)
        >>> step = map_reduce_action(
        ...     action=double,
        ...     state=lambda state, context, inputs: (state.update(x=x) for x in [1, 2, 3]),
        ...     reducer=lambda state, states: state.update(ys=sorted(s["y"] for s in states)),
        ...     reads=[], writes=["ys"],
        ... )
        >>> ApplicationBuilder().with_actions(m=step).with_entrypoint("m").build().run()[2]["ys"]
        [2, 4, 6]
    """
    return _FunctionsMap(action, state, reducer, reads, writes, inputs)
