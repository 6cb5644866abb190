"""Sub-applications: `RunnableGraph`, `SubGraphTask`, and running one task.

Everything a parallel action runs is a *task*: a `RunnableGraph` (a graph with
an entrypoint and halt points) over a state and inputs, under a stable
application id. An action, an ``@action`` function and a `RunnableGraph` are
interchangeable wherever a task's work is expected: `as_runnable` turns the
first two into a one-action graph.

The state a task finishes with reaches ``reduce`` as a `TaskState`: a `State`
whose ``.task`` attribute (a `TaskInfo`) tells which task produced it, how many
attempts it took, and the exception if it failed.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import hashlib
import reprlib
import signal
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nbflow.core.actions import Action, ApplicationContext, FingerprintParts, as_action, declared
from nbflow.core.application import Application
from nbflow.core.graph import Graph
from nbflow.core.hooks import as_hook
from nbflow.core.machines import acomplete, complete
from nbflow.core.persistence import PersistHook, load_record, resume_point
from nbflow.core.state import State
from nbflow.core.step import aexecute_step, execute_step
from nbflow.errors import GraphError, HookContractError, Pruned, TaskTimeoutError
from nbflow.fingerprint.memo import DigestMemo
from nbflow.parallel.attempts import NOTHING_MORE, Collect
from nbflow.parallel.capture import OUTPUT, PointOutput
from nbflow.parallel.daemon_threads import on_daemon_thread
from nbflow.parallel.reporting import PRUNED, REPORTS, Reports

__all__ = [
    "RunnableGraph", "SubGraphTask", "TaskInfo", "TaskState", "as_runnable", "task_app_id", "PointInterrupted",
    "copied",
]  # fmt: skip

_SHORT = reprlib.Repr()
_SHORT.maxstring = 40
_SHORT.maxother = 40
_SHORT.maxlist = _SHORT.maxdict = 4


class RunnableGraph(Action):
    """A graph with an entrypoint and halt points, runnable as one unit of work.

    Use it as a parallel action's sub-graph, or directly as an action in
    ``with_actions``: it then runs as a sub-application over the keys its
    actions read and writes, and writes back what they wrote.

    Args:
        graph: the graph to run.
        entrypoint: the action it starts with.
        halt_after: the action (or actions) after which it stops.

    Example:
        >>> from nbflow import GraphBuilder, action
        >>> @action(reads=["x"], writes=["y"])
        ... def double(state):
        ...     return state.update(y=state["x"] * 2)
        >>> graph = GraphBuilder().with_actions(double=double).build()
        >>> RunnableGraph(graph, entrypoint="double", halt_after="double").writes
        ['y']
    """

    def __init__(
        self, graph: Graph, entrypoint: str, halt_after: str | Iterable[str], name: str | None = None
    ):
        if not isinstance(graph, Graph):
            msg = f"RunnableGraph(graph=...) takes a Graph built with GraphBuilder().build(); got {type(graph).__name__}."
            raise TypeError(msg)
        self.graph = graph
        self.entrypoint = entrypoint
        self.halt_after = [halt_after] if isinstance(halt_after, str) else list(halt_after)
        graph.check_name(entrypoint, "RunnableGraph(entrypoint=...)")
        for name_ in self.halt_after:
            graph.check_name(name_, "RunnableGraph(halt_after=...)")
        if not self.halt_after:
            msg = "RunnableGraph(halt_after=...) needs at least one action to stop after."
            raise GraphError(msg)
        self._name = name or entrypoint
        written = graph.keys_written()
        read = [k for a in graph.actions.values() for k in declared(a, "reads")]
        read += [k for t in graph.transitions for k in t.condition.keys]
        self.reads = _outside_reads(graph, entrypoint)
        self.writes = sorted(written)
        self.keys = list(dict.fromkeys([*read, *sorted(written)]))

    @staticmethod
    def create(from_: Any) -> RunnableGraph:
        """A one-action graph for an action or ``@action`` function; a `RunnableGraph` as it is (Burr's API).

        Example:
            >>> from nbflow import action
            >>> @action(reads=[], writes=["x"])
            ... def one(state):
            ...     return state.update(x=1)
            >>> RunnableGraph.create(one).halt_after
            ['one']
        """
        return as_runnable(from_, "RunnableGraph.create(...)")

    @functools.cached_property
    def is_async(self) -> bool:
        return any(a.is_async for a in self.graph.actions.values())

    @functools.cached_property
    def lone_action(self) -> Action | None:
        """Its only action, when it has no transitions: then a run of it is exactly one step."""
        if len(self.graph.actions) == 1 and not self.graph.transitions:
            return next(iter(self.graph.actions.values()))
        return None

    @property
    def single_step(self) -> bool:
        return True

    def fingerprint_parts(self) -> FingerprintParts:
        return FingerprintParts(
            code=self.graph, data={"entrypoint": self.entrypoint, "halt_after": sorted(self.halt_after)}
        )

    def children(self) -> list[RunnableGraph]:
        return [self]

    def _callable(self) -> Callable:
        return self._run_nested

    def _acallable(self) -> Callable:
        return self._arun_nested

    def _nested_app(
        self, state: State, context: ApplicationContext | None, inputs: Mapping[str, Any]
    ) -> Application | State:
        # The same sub-application a parallel task gets: it inherits the persister and tracker,
        # and resumes (or is found finished) after a crash.
        parent_id = context.app_id if context else "root"
        seq = context.sequence_id if context else 0
        start = None
        if context is not None and context.persister is not None:
            start = DigestMemo().task(self.reads, inputs, state, strict=False)
        app_id = task_app_id(parent_id, seq, self.name or self.entrypoint, 0, start)
        return _task_app(self, state, app_id, context)

    def _run_nested(self, state: State, __context: ApplicationContext | None = None, **inputs: Any) -> State:
        app = self._nested_app(state, __context, inputs)
        if isinstance(app, State):
            return app
        if self.is_async:
            return _run_coroutine(app.arun(halt_after=self.halt_after, inputs=inputs))[2]
        return app.run(halt_after=self.halt_after, inputs=inputs)[2]

    async def _arun_nested(
        self, state: State, __context: ApplicationContext | None = None, **inputs: Any
    ) -> State:
        app = self._nested_app(state, __context, inputs)
        if isinstance(app, State):
            return app
        return (await app.arun(halt_after=self.halt_after, inputs=inputs))[2]

    def __repr__(self) -> str:
        return f"<RunnableGraph {self.name!r} entrypoint={self.entrypoint!r} halt_after={self.halt_after}>"


def _outside_reads(graph: Graph, entrypoint: str) -> list[str]:
    """The keys a sub-graph needs from the state it starts with.

    Everything the entrypoint reads (it runs first, so nothing inside wrote it yet), and
    any key some action reads that no *other* action writes (a counter an action reads and
    bumps itself must be there to begin with); condition keys likewise.
    """
    writers: dict[str, set[str]] = {}
    for name, act in graph.actions.items():
        for key in declared(act, "writes"):
            writers.setdefault(key, set()).add(name)
    needed = list(declared(graph.actions[entrypoint], "reads"))
    for name, act in graph.actions.items():
        needed += [k for k in declared(act, "reads") if not writers.get(k, set()) - {name}]
    needed += [k for t in graph.transitions for k in t.condition.keys if k not in writers]
    return list(dict.fromkeys(needed))


def as_runnable(obj: Any, where: str) -> RunnableGraph:
    """``obj`` (an action, an ``@action`` function or a `RunnableGraph`) as a `RunnableGraph`.

    Args:
        obj: the work of a task.
        where: how to name the hook in an error, e.g. ``"MapStates.action()"``.
    """
    if isinstance(obj, RunnableGraph):
        return obj
    if isinstance(obj, Action):
        name = obj.name or _snake(type(obj).__name__)
        graph = Graph({name: as_action(obj, name)}, ())
        return RunnableGraph(graph, entrypoint=name, halt_after=name, name=name)
    kind = (
        "a plain function; decorate it with @action(reads=[...], writes=[...])"
        if callable(obj)
        else f"a {type(obj).__name__}"
    )
    msg = f"{where} must give an Action, an @action function or a RunnableGraph; it gave {kind}."
    raise HookContractError(msg)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def task_app_id(
    parent_app_id: str, sequence_id: int, action_name: str, position: int, start: str | None = None
) -> str:
    """A sub-application id that a re-run of the same step reproduces.

    Derived from the parent's id, the step's sequence id (so the second pass of
    a loop gets fresh ids), the parallel action's name and the task's position;
    and, when results are persisted, ``start``: a digest of the task's inputs and
    read state, so that a saved result is only ever found again by the same task.
    """
    key = f"{parent_app_id}\x1f{sequence_id}\x1f{action_name}\x1f{position}\x1f{start or ''}".encode()
    return hashlib.blake2b(key, digest_size=12).hexdigest()


@dataclass
class SubGraphTask:
    """One unit of work for `TaskBasedParallelAction`: a graph, a state and inputs.

    Args:
        action: an action, an ``@action`` function, or a `RunnableGraph`
            (``graph=`` is the same, under Apache Burr's name).
        state: the state the task starts from.
        inputs: inputs offered to the task's actions.
        application_id: a stable id; derived from the parent step and the task's
            position (and, with a persister, what it starts from) when not given.
        tracker: this task's tracker, instead of the one it would inherit.
        state_persister: where this task saves its steps, instead of the inherited persister.
        state_initializer: where it resumes from, when not the same as ``state_persister``.
    """

    action: Any = None
    state: State = None  # type: ignore[assignment]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    application_id: str | None = None
    tracker: Any = None
    state_persister: Any = None
    state_initializer: Any = None
    graph: Any = None
    index: int = field(default=-1, repr=False)

    def __post_init__(self) -> None:
        if self.action is None and self.graph is None:
            msg = "SubGraphTask needs its work: action=... (an action, an @action function or a RunnableGraph) or graph=RunnableGraph(...)."
            raise HookContractError(msg)
        if self.action is not None and self.graph is not None and self.action is not self.graph:
            msg = "SubGraphTask takes action=... or graph=..., not both: they name the same thing."
            raise HookContractError(msg)
        self.graph = as_runnable(
            self.action if self.action is not None else self.graph, "SubGraphTask(action=...)"
        )
        self.action = self.graph
        if not isinstance(self.state, State):
            if not isinstance(self.state, Mapping):
                msg = f"SubGraphTask(state=...) takes a State; got {type(self.state).__name__}."
                raise HookContractError(msg)
            self.state = State(self.state)
        self.inputs = dict(self.inputs or {})

    def context_for(self, parent: ApplicationContext | None) -> ApplicationContext | None:
        """The parent context this task's sub-application runs under, with its own overrides."""
        if parent is None or (
            self.tracker is None and self.state_persister is None and self.state_initializer is None
        ):
            return parent
        changes: dict[str, Any] = {}
        if self.tracker is not None:
            tracker = as_hook(self.tracker)
            if tracker is None:
                msg = f"SubGraphTask(tracker=...) takes a tracker (a LifecycleHook, or a Burr-style one with pre_run_step/post_run_step); got {type(self.tracker).__name__}."
                raise HookContractError(msg)
            changes["tracker"] = tracker
        if self.state_persister is not None:
            changes["persister"] = self.state_persister
        if self.state_initializer is not None and self.state_initializer is not self.state_persister:
            changes["loader"] = self.state_initializer
        return dataclasses.replace(parent, **changes)

    def describe(self) -> str:
        """A short label for messages: its inputs, or the values of the keys its graph reads."""
        shown = self.inputs or {k: self.state[k] for k in self.graph.reads if k in self.state}
        return ", ".join(f"{k}={_SHORT.repr(v)}" for k, v in list(shown.items())[:4])


@dataclass(frozen=True)
class TaskInfo:
    """Which task produced a `TaskState`, and how it went.

    ``resumed`` is true when the task was finished by an earlier run and its final
    state was loaded from the persister rather than computed again; ``cached``
    when the result cache already held it.
    """

    index: int
    application_id: str
    action: str
    inputs: Mapping[str, Any]
    attempts: int
    duration_s: float
    error: BaseException | None = None
    traceback: str | None = None
    resumed: bool = False
    cached: bool = False

    @property
    def ok(self) -> bool:
        """Whether the task finished without an exception."""
        return self.error is None


class TaskState(State):
    """The final state of one task, as ``reduce`` sees it; ``.task`` says which task it was."""

    __slots__ = ("task",)

    @classmethod
    def of(cls, state: State, info: TaskInfo) -> TaskState:
        new = cls.__new__(cls)
        new._base, new._delta, new._len = state._base, state._delta, state._len
        new._scope, new._written = None, {}
        new.task = info
        return new

    def __repr__(self) -> str:
        status = "ok" if self.task.ok else f"failed: {type(self.task.error).__name__}"
        return f"TaskState(task={self.task.index}, {status}, {super().__repr__()})"

    def __reduce__(self):
        return (TaskState.of, (State(self._raw()), self.task))


@dataclass
class Outcome:
    """What running a task returns to the parent: the final state (or its changes) and how it went."""

    index: int
    state: State | None
    attempts: int
    duration_s: float
    error: BaseException | None = None
    traceback: str | None = None
    cancelled: bool = False
    changes: tuple[dict, list[str]] | None = None
    resumed: bool = False


def copied(tracker: Any) -> Any:
    """``tracker.copy()`` if it has one (Burr's convention: each sub-application gets a copy), else itself."""
    return tracker.copy() if callable(getattr(tracker, "copy", None)) else tracker


class _OneStep:
    """The sub-application of a one-action task that nothing persists or tracks, without the application.

    Its step is the one the application would run (`execute_step`, with the same context), and
    it keeps the same ``state`` (the state before the step until the step succeeds). The
    application's machinery would cost more than a cheap action does.

    An action may offer ``run_direct(state) -> State`` when no step check can fail for it: it
    takes no inputs or context, its reads are in every state it is given, and it writes only
    its declared keys. A plain function swept over a grid is such an action; for a trivial
    function the checks would cost ten times the call.
    """

    def __init__(self, act: Action, state: State, app_id: str, parent: ApplicationContext) -> None:
        self.act, self.state, self.app_id, self.parent = act, state, app_id, parent
        self.hooks: list = []

    def context(self) -> ApplicationContext:
        parent = self.parent
        return ApplicationContext(
            app_id=self.app_id,
            partition_key=parent.partition_key,
            sequence_id=0,
            action_name=self.act.name,
            parent_app_id=parent.app_id,
            parent_sequence_id=parent.sequence_id,
            executor=parent.executor,
        )

    def run(self, *, halt_after: Iterable[str], inputs: Mapping[str, Any]) -> tuple[Action, Any, State]:
        direct = getattr(self.act, "run_direct", None)
        if direct is not None:
            # Its contract holds by construction, so the step's checks have nothing to find.
            self.state = direct(self.state)
            return self.act, None, self.state
        outcome = execute_step(self.act, self.state, inputs, self.context)
        self.state = outcome.state
        return self.act, outcome.result, outcome.state

    async def arun(
        self, *, halt_after: Iterable[str], inputs: Mapping[str, Any]
    ) -> tuple[Action, Any, State]:
        outcome = await aexecute_step(self.act, self.state, inputs, self.context)
        self.state = outcome.state
        return self.act, outcome.result, outcome.state


def _task_app(
    graph: RunnableGraph, state: State, app_id: str, parent: ApplicationContext | None
) -> Application | _OneStep | State:
    """The sub-application for a task, resumed from the cascaded persister if it saved steps.

    Returns the saved final state instead when an earlier run already finished the task.
    """
    persister = parent.persister if parent else None
    loader = parent.state_initializer if parent else None
    tracker = parent.tracker if parent else None
    lone = graph.lone_action
    unwatched = persister is None and loader is None and tracker is None
    if lone is not None and parent is not None and unwatched:
        return _OneStep(lone, state, app_id, parent)
    partition_key = parent.partition_key if parent else None
    entrypoint, sequence_id, restored_from = graph.entrypoint, 0, None
    if loader is not None:
        record = load_record(loader, partition_key, app_id)
        if record is not None:
            next_action, sequence_id = resume_point(graph.graph, record)
            if next_action is None or (record.status == "completed" and record.position in graph.halt_after):
                return record.state
            state, entrypoint = record.state, next_action.name
            restored_from = record.sequence_id if loader is persister else None
    hooks: list = [PersistHook(persister, after=restored_from)] if persister is not None else []
    if tracker is not None:
        hooks.append(tracker)
    return Application(
        graph.graph,
        state,
        entrypoint,
        app_id=app_id,
        partition_key=partition_key,
        hooks=hooks,
        sequence_id=sequence_id,
        parent=parent,
        executor=parent.executor if parent else None,
        persister=persister,
        tracker=tracker,
    )


def _attempts(
    graph: RunnableGraph,
    state: State,
    inputs: Mapping[str, Any],
    app_id: str,
    index: int,
    parent: ApplicationContext | None,
    retries: int = 0,
    backoff_s: float = 0.0,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    collect: Collect = NOTHING_MORE,
) -> Generator[tuple[str, Any], Any, Outcome]:
    """The life of one task, written once for both drivers: it yields what to do, they do it.

    It yields ``("run", app)`` (run the sub-application to its halt point, send back its
    final state or throw in what it raised) and ``("sleep", seconds)`` between retries,
    and returns the `Outcome`.
    """
    if cancel is not None and cancel.is_set():
        return Outcome(index, None, 0, 0.0, cancelled=True)
    started = time.perf_counter()
    attempt = 0
    while True:
        app = _task_app(graph, state, app_id, parent)
        if isinstance(app, State):
            return Outcome(index, app, attempt, time.perf_counter() - started, resumed=True)
        attempt += 1
        began = time.perf_counter()
        reports, output = Reports(index, collect.listen, attempt), PointOutput(collect.output)
        try:
            with reports, output:
                final = yield ("run", app)
            if timeout is not None and time.perf_counter() - began > timeout:
                # It returned, but only by defeating its deadline (it caught the stop, reset the
                # alarm, or swallowed a cancellation): what it took is what counts.
                raise _Overtime(defeated=True)
            return Outcome(index, _kept(final, reports, output), attempt, time.perf_counter() - started)
        except BaseException as exc:
            if isinstance(exc, _STOPS):
                raise
            elapsed = time.perf_counter() - started
            if isinstance(exc, Pruned):
                # Stopped on purpose: a result to keep (and cache), not a failure to retry.
                stopped = _kept(app.state, reports, output)._with({PRUNED: exc.step})
                return Outcome(index, stopped, attempt, elapsed)
            if isinstance(exc, _Overtime):
                error, trace = TaskTimeoutError(exc.message(timeout)), None
                if exc.abandoned:
                    # Left running on its thread: whatever it finishes later must not be saved
                    # as this task's result (a resume would take it for a finished task).
                    app.hooks[:] = [h for h in app.hooks if not isinstance(h, PersistHook)]
            else:
                error, trace = exc, traceback.format_exc()
            if attempt <= retries and not (cancel is not None and cancel.is_set()):
                yield ("sleep", backoff_s * 2 ** (attempt - 1))
                if not (cancel is not None and cancel.is_set()):
                    continue
            return Outcome(index, _kept(app.state, reports, output), attempt, elapsed, error, trace)


def _kept(state: State, reports: Reports, output: PointOutput) -> State:
    """``state`` with copies of what the attempt reported and printed, if anything.

    Copies: a thread abandoned past its timeout may go on reporting and printing.
    """
    kept: dict[str, Any] = {}
    if reports.items:
        kept[REPORTS] = list(reports.items)
    if output.parts:
        kept[OUTPUT] = output.text()
    return state._with(kept) if kept else state


def run_task(
    graph: RunnableGraph,
    state: State,
    inputs: Mapping[str, Any],
    app_id: str,
    index: int,
    parent: ApplicationContext | None,
    retries: int = 0,
    backoff_s: float = 0.0,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    collect: Collect = NOTHING_MORE,
) -> Outcome:
    """Run one task to its halt point, retrying failures with exponential backoff.

    With a persister cascaded from the parent, a task an earlier run finished is
    loaded instead of run (``resumed=True``), and one it left half-way goes on
    from its last saved step. With ``timeout``, an attempt that runs longer fails
    with `TaskTimeoutError` (see `_within` for how it is stopped).
    """
    machine = _attempts(
        graph, state, inputs, app_id, index, parent, retries, backoff_s, cancel, timeout, collect
    )

    def run(app: Application) -> State:
        if graph.is_async:
            return _within(
                timeout, lambda: _run_coroutine(app.arun(halt_after=graph.halt_after, inputs=inputs))[2]
            )
        return _within(timeout, lambda: app.run(halt_after=graph.halt_after, inputs=inputs)[2])

    def perform(request: tuple[str, Any]) -> Any:
        kind, arg = request
        if kind == "run":
            return run(arg)
        # A backoff ends early when the step is cancelled.
        return cancel.wait(arg) if cancel is not None else time.sleep(arg)

    return complete(machine, perform)


async def arun_task(
    graph: RunnableGraph,
    state: State,
    inputs: Mapping[str, Any],
    app_id: str,
    index: int,
    parent: ApplicationContext | None,
    retries: int = 0,
    backoff_s: float = 0.0,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    collect: Collect = NOTHING_MORE,
) -> Outcome:
    """`run_task` on an event loop: awaits the sub-application and sleeps without blocking."""
    machine = _attempts(
        graph, state, inputs, app_id, index, parent, retries, backoff_s, cancel, timeout, collect
    )

    async def run(app: Application) -> State:
        # A synchronous graph runs on a thread: inline it would block the loop, and with it every
        # other task, a deadline, and a notebook's own loop.
        work = (
            app.arun(halt_after=graph.halt_after, inputs=inputs)
            if graph.is_async
            else on_daemon_thread(functools.partial(app.run, halt_after=graph.halt_after, inputs=inputs))
        )
        if timeout is None:
            return (await work)[2]
        try:
            return (await asyncio.wait_for(work, timeout))[2]
        except asyncio.TimeoutError:
            raise _Overtime(abandoned=not graph.is_async) from None

    async def perform(request: tuple[str, Any]) -> Any:
        kind, arg = request
        return await run(arg) if kind == "run" else await _sleep_unless(cancel, arg)

    try:
        return await acomplete(machine, perform)
    except KeyboardInterrupt as stop:
        # On a loop a KeyboardInterrupt would tear the loop down and lose every other task;
        # it travels as an ordinary exception and is a stop again at the consumer.
        raise PointInterrupted() from stop


class PointInterrupted(Exception):
    """A KeyboardInterrupt a task raised on an event loop, carried out as an ordinary exception."""


async def _sleep_unless(cancel: threading.Event | None, seconds: float) -> None:
    """``asyncio.sleep(seconds)``, cut short when ``cancel`` is set."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and not (cancel is not None and cancel.is_set()):
        await asyncio.sleep(min(left, 0.1))


class _Overtime(BaseException):
    """Raised into a task that ran past its timeout.

    Not an ``Exception``, so that the task's own ``except Exception`` cannot swallow it.
    """

    def __init__(self, abandoned: bool = False, defeated: bool = False) -> None:
        super().__init__()
        self.abandoned = abandoned
        self.defeated = defeated

    def message(self, timeout: float | None) -> str:
        how = ""
        if self.abandoned:
            how = "; it was abandoned on its thread, which Python cannot stop, and may still be running"
        elif self.defeated:
            how = "; it did not stop when told to (it caught the stop or reset the alarm), so its result was dropped"
        return f"ran past its timeout of {timeout:g} s{how}"


def _within(timeout: float | None, call: Callable[[], Any]) -> Any:
    """``call()``, stopped by `_Overtime` after ``timeout`` seconds.

    In a process's main thread (a worker process, the sequential executor) an alarm
    signal raises it inside the task, which stops it. Elsewhere the task runs on a
    thread of its own and is abandoned at the deadline: Python cannot stop a thread.
    """
    if timeout is None:
        return call()
    if (
        threading.current_thread() is threading.main_thread()
        and hasattr(signal, "setitimer")
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)
    ):
        armed = [True]

        def overtime(signum: int, frame: Any) -> None:
            if armed[0]:
                raise _Overtime()

        previous = signal.signal(signal.SIGALRM, overtime)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return call()
        finally:
            # An alarm that lands now, as the task ends, must neither escape nor leave our
            # handler installed: disarm first, and put things back whatever happens.
            try:
                armed[0] = False
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
    box: dict[str, Any] = {}
    done = threading.Event()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box["value"] = context.run(call)
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="nbflow-task", daemon=True).start()
    if not done.wait(timeout):
        raise _Overtime(abandoned=True)
    if "error" in box:
        raise box["error"]
    return box["value"]


# What a task raises to stop the run rather than to fail: Ctrl-C, and cancellation on a loop.
# Anything else, SystemExit and other BaseExceptions included, fails only its own task.
_STOPS = (KeyboardInterrupt, GeneratorExit, asyncio.CancelledError)


def _run_coroutine(coro: Any) -> Any:
    """Run ``coro`` to completion from sync code, even where an event loop is already running.

    Jupyter runs one in the main thread, where ``asyncio.run`` refuses to start;
    there the coroutine runs on a fresh loop in a short-lived thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="nbflow-async-bridge")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
