"""`Application`: a graph, a current state and a next action, run step by step or to a halt.

Build one with `ApplicationBuilder`. Steps are numbered from 0: ``sequence_id``
is the number of steps completed, which is also the id the next step will get.
A step that raises leaves ``state`` as it was before it, so nothing already
computed is lost and the step can be retried.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping
from typing import Any

from nbflow.core.actions import Action, ApplicationContext, declared
from nbflow.core.graph import Graph, _GraphAssembly
from nbflow.core.hooks import HookGroup, LifecycleHook, afire, fire
from nbflow.core.persistence import PersisterProtocol, PersistHook, resume_point
from nbflow.core.state import State
from nbflow.core.step import StepOutcome, aexecute_step, execute_step
from nbflow.errors import AsyncActionError, GraphError, HaltError

__all__ = ["Application", "ApplicationBuilder"]

StepResult = tuple[Action, Any, State]


class Application:
    """Runs a `Graph` from an entrypoint over an immutable `State`.

    Example:
        >>> from nbflow import ApplicationBuilder, action, expr, default
        >>> @action(reads=["n"], writes=["n"])
        ... def tick(state):
        ...     return state.update(n=state["n"] + 1)
        >>> @action(reads=["n"], writes=["done"])
        ... def finish(state):
        ...     return state.update(done=True)
        >>> app = (
        ...     ApplicationBuilder()
        ...     .with_actions(tick=tick, finish=finish)
        ...     .with_transitions(("tick", "tick", expr("n < 3")), ("tick", "finish", default))
        ...     .with_state(n=0)
        ...     .with_entrypoint("tick")
        ...     .build()
        ... )
        >>> action_, result, state = app.run(halt_after=["finish"])
        >>> state["n"], state["done"], app.sequence_id
        (3, True, 4)
    """

    def __init__(
        self,
        graph: Graph,
        state: State,
        entrypoint: str | None,
        *,
        app_id: str,
        partition_key: str | None = None,
        hooks: Iterable[LifecycleHook] = (),
        sequence_id: int = 0,
        parent: ApplicationContext | None = None,
        executor: Any = None,
        persister: Any = None,
        tracker: Any = None,
    ) -> None:
        self.graph = graph
        self._state = state
        self._next = graph[entrypoint] if entrypoint is not None else None
        # Where this application started (a resumed one: where it resumed); drawings mark it.
        self.entrypoint = entrypoint
        self.app_id = app_id
        self.partition_key = partition_key
        self.hooks = list(hooks)
        self._sequence_id = sequence_id
        self.parent = parent
        self.executor = executor
        self.persister = persister
        self.tracker = tracker

    # -- what a notebook user looks at ----------------------------------------------------

    @property
    def state(self) -> State:
        """The state after the last completed step."""
        return self._state

    @property
    def sequence_id(self) -> int:
        """How many steps have completed (the id the next step will get)."""
        return self._sequence_id

    @property
    def next_action(self) -> Action | None:
        """The action the next step will run, or None once the graph has halted."""
        return self._next

    def context(self, act: Action | None = None) -> ApplicationContext:
        """The `ApplicationContext` an action running as the next step would receive."""
        return ApplicationContext(
            app_id=self.app_id,
            partition_key=self.partition_key,
            sequence_id=self._sequence_id,
            action_name=act.name if act is not None else None,
            parent_app_id=self.parent.app_id if self.parent else None,
            parent_sequence_id=self.parent.sequence_id if self.parent else None,
            executor=self.executor,
            persister=self.persister,
            tracker=self.tracker,
        )

    def visualize(
        self,
        output_file: str | os.PathLike | None = None,
        *,
        format: str | None = None,
        show_conditions: bool = True,
        show_state_keys: bool = False,
    ) -> Any:
        """Draw the application's graph as a ``graphviz.Digraph`` (shown inline in Jupyter).

        The entrypoint is marked; see `nbflow.viz.visualize` for the options.

        Args:
            output_file: also render the drawing to this file (needs Graphviz's ``dot`` program).
            format: ``"svg"``, ``"png"`` or ``"pdf"``; by default ``output_file``'s suffix, else svg.
            show_conditions: label conditional transitions with their condition.
            show_state_keys: list each action's reads and writes.
        """
        # The core only forwards, so that `import nbflow` stays free of graphviz.
        from nbflow.viz import visualize

        return visualize(
            self,
            output_file,
            format=format,
            show_conditions=show_conditions,
            show_state_keys=show_state_keys,
        )

    def __repr__(self) -> str:
        nxt = self._next.name if self._next else None
        return f"<Application {self.app_id!r} step={self._sequence_id} next={nxt!r} keys={len(self._state)}>"

    # -- one step --------------------------------------------------------------------------

    def _begin(
        self, inputs: Mapping[str, Any] | None, sync: bool
    ) -> tuple[Action, Callable[[], ApplicationContext], float] | None:
        act = self._next
        if act is None:
            return None
        if sync and act.is_async:
            msg = f"Action {act.name!r} is async; run the application with `await app.astep()`, `await app.arun(...)` or `async for ... in app.aiterate(...)`."
            raise AsyncActionError(msg)
        if self.hooks:
            fire(
                self.hooks,
                "pre_step",
                app=self,
                action=act,
                state=self._state,
                inputs=dict(inputs or {}),
                sequence_id=self._sequence_id,
            )
        return act, functools.partial(self.context, act), time.perf_counter()

    def _after(
        self, act: Action, started: float, outcome: StepOutcome | None, exc: BaseException | None
    ) -> dict:
        """Commit a finished step (or annotate a failed one); return the post_step hook arguments."""
        seq = self._sequence_id
        event = dict(app=self, action=act, sequence_id=seq, duration_s=time.perf_counter() - started)
        if exc is not None:
            if hasattr(exc, "add_note"):
                exc.add_note(
                    f"nbflow: raised in action {act.name!r}, step {seq} of application {self.app_id!r}; app.state still holds the state from before this step."
                )
            return {
                **event,
                "state": self._state,
                "result": None,
                "exception": exc,
                "written": {},
                "deleted": [],
            }
        self._state = outcome.state
        self._sequence_id += 1
        try:
            self._next = self.graph.next_action(act.name, outcome.state)
        except Exception:
            self._next = None
            raise
        return {
            **event,
            "state": outcome.state,
            "result": outcome.result,
            "exception": None,
            "written": outcome.written,
            "deleted": outcome.deleted,
        }

    def step(self, inputs: Mapping[str, Any] | None = None) -> StepResult | None:
        """Run the next action: ``(action, result, new_state)``, or None if the graph has halted.

        Raises:
            AsyncActionError: the next action is async (use `astep`).
        """
        begun = self._begin(inputs, sync=True)
        if begun is None:
            return None
        act, ctx, started = begun
        try:
            outcome = execute_step(act, self._state, inputs, ctx)
        except BaseException as exc:
            event = self._after(act, started, None, exc)
            if self.hooks:
                fire(self.hooks, "post_step", **event)
            raise
        event = self._after(act, started, outcome, None)
        if self.hooks:
            fire(self.hooks, "post_step", **event)
        return act, outcome.result, outcome.state

    async def astep(self, inputs: Mapping[str, Any] | None = None) -> StepResult | None:
        """`step` for async code: awaits async actions and runs sync ones inline."""
        begun = self._begin(inputs, sync=False)
        if begun is None:
            return None
        act, ctx, started = begun
        try:
            outcome = await aexecute_step(act, self._state, inputs, ctx)
        except BaseException as exc:
            event = self._after(act, started, None, exc)
            if self.hooks:
                await afire(self.hooks, "post_step", **event)
            raise
        event = self._after(act, started, outcome, None)
        if self.hooks:
            await afire(self.hooks, "post_step", **event)
        return act, outcome.result, outcome.state

    # -- many steps ------------------------------------------------------------------------

    def _halts(
        self, halt_after: Iterable[str] | None, halt_before: Iterable[str] | None
    ) -> tuple[list[str], list[str]]:
        lists = []
        for label, names in (("halt_after", halt_after), ("halt_before", halt_before)):
            names = [names] if isinstance(names, str) else list(names or ())
            for name in names:
                if name not in self.graph:
                    msg = f"{label} names {name!r}, which is not an action of this application. Known actions: {sorted(self.graph.actions)}."
                    raise HaltError(msg)
            lists.append(names)
        return lists[0], lists[1]

    def iterate(
        self,
        *,
        halt_after: Iterable[str] | None = None,
        halt_before: Iterable[str] | None = None,
        inputs: Mapping[str, Any] | None = None,
        display: bool = False,
    ) -> Generator[StepResult, None, StepResult]:
        """Yield ``(action, result, state)`` after each step until a halt point or the graph's end.

        The generator's return value is what `run` returns. ``inputs`` are offered
        to every step; each action takes the ones it declares. With ``display``, a
        Jupyter notebook shows the graph live while it runs (`nbflow.widgets.GraphView`).
        """
        if display:
            # The core only forwards, so that `import nbflow` stays free of ipywidgets and graphviz.
            from nbflow.widgets import GraphView

            with GraphView.showing(self):
                return (
                    yield from self.iterate(halt_after=halt_after, halt_before=halt_before, inputs=inputs)
                )
        after, before = self._halts(halt_after, halt_before)
        if self.hooks:
            fire(
                self.hooks,
                "pre_run",
                app=self,
                halt_after=after,
                halt_before=before,
                inputs=dict(inputs or {}),
            )
        last: StepResult = (None, None, self._state)  # type: ignore[assignment]
        try:
            while self._next is not None:
                if self._next.name in before:
                    last = (self._next, None, self._state)
                    break
                last = self.step(inputs)  # type: ignore[assignment]
                yield last
                if last[0].name in after:
                    break
        except BaseException as exc:
            if self.hooks:
                fire(
                    self.hooks,
                    "post_run",
                    app=self,
                    action=last[0],
                    result=last[1],
                    state=self._state,
                    exception=exc,
                )
            raise
        if self.hooks:
            fire(
                self.hooks,
                "post_run",
                app=self,
                action=last[0],
                result=last[1],
                state=self._state,
                exception=None,
            )
        return last

    def run(
        self,
        *,
        halt_after: Iterable[str] | None = None,
        halt_before: Iterable[str] | None = None,
        inputs: Mapping[str, Any] | None = None,
        display: bool = False,
    ) -> StepResult:
        """Run until an action in ``halt_after`` completes, one in ``halt_before`` is next, or the graph ends.

        With ``display``, a Jupyter notebook shows the graph while it runs, each
        action coloured pending, running, done or failed (`nbflow.widgets.GraphView`).

        Returns:
            ``(action, result, state)`` of the last step run; with ``halt_before``,
            the action that would run next with a result of None.
        """
        gen = self.iterate(halt_after=halt_after, halt_before=halt_before, inputs=inputs, display=display)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value

    def aiterate(
        self,
        *,
        halt_after: Iterable[str] | None = None,
        halt_before: Iterable[str] | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[StepResult, None]:
        """`iterate` for async code: an async generator of ``(action, result, state)``."""
        return self._aiterate(halt_after, halt_before, inputs, [])

    async def _aiterate(
        self,
        halt_after: Iterable[str] | None,
        halt_before: Iterable[str] | None,
        inputs: Mapping[str, Any] | None,
        final: list[StepResult],
    ) -> AsyncGenerator[StepResult, None]:
        # An async generator cannot return a value, so the last step lands in `final` for arun.
        after, before = self._halts(halt_after, halt_before)
        if self.hooks:
            await afire(
                self.hooks,
                "pre_run",
                app=self,
                halt_after=after,
                halt_before=before,
                inputs=dict(inputs or {}),
            )
        last: StepResult = (None, None, self._state)  # type: ignore[assignment]
        try:
            while self._next is not None:
                if self._next.name in before:
                    last = (self._next, None, self._state)
                    break
                last = await self.astep(inputs)  # type: ignore[assignment]
                yield last
                if last[0].name in after:
                    break
        except BaseException as exc:
            if self.hooks:
                await afire(
                    self.hooks,
                    "post_run",
                    app=self,
                    action=last[0],
                    result=last[1],
                    state=self._state,
                    exception=exc,
                )
            raise
        if self.hooks:
            await afire(
                self.hooks,
                "post_run",
                app=self,
                action=last[0],
                result=last[1],
                state=self._state,
                exception=None,
            )
        final.append(last)

    async def arun(
        self,
        *,
        halt_after: Iterable[str] | None = None,
        halt_before: Iterable[str] | None = None,
        inputs: Mapping[str, Any] | None = None,
        display: bool = False,
    ) -> StepResult:
        """`run` for async code."""
        if display:
            # The core only forwards, so that `import nbflow` stays free of ipywidgets and graphviz.
            from nbflow.widgets import GraphView

            with GraphView.showing(self):
                return await self.arun(halt_after=halt_after, halt_before=halt_before, inputs=inputs)
        final: list[StepResult] = []
        async for _ in self._aiterate(halt_after, halt_before, inputs, final):
            pass
        return final[0]


class ApplicationBuilder(_GraphAssembly):
    """Builds an `Application`: actions and transitions (or a ready `Graph`), state, entrypoint.

    Example:
        >>> from nbflow import action
        >>> @action(reads=[], writes=["greeting"])
        ... def hello(state, name="world"):
        ...     return state.update(greeting=f"hello {name}")
        >>> app = ApplicationBuilder().with_actions(hello=hello).with_entrypoint("hello").build()
        >>> app.run(inputs={"name": "nbflow"})[2]["greeting"]
        'hello nbflow'
    """

    def __init__(self) -> None:
        super().__init__()
        self._state = State()
        self._entrypoint: str | None = None
        self._app_id: str | None = None
        self._partition_key: str | None = None
        self._hooks: list[LifecycleHook] = []
        self._executor: Any = None
        self._persister: Any = None
        self._tracker: LifecycleHook | None = None
        self._initialize: tuple[Any, bool, Any, str | None] | None = None

    def with_graph(self, graph: Graph) -> ApplicationBuilder:
        """Start from a prebuilt `Graph`; more actions and transitions may still be added."""
        if not isinstance(graph, Graph):
            msg = f"with_graph() takes a Graph built by GraphBuilder().build(); got {type(graph).__name__}."
            raise TypeError(msg)
        self._extend_from(graph)
        return self

    def with_state(
        self, state: State | Mapping[str, Any] | None = None, /, **values: Any
    ) -> ApplicationBuilder:
        """Set the initial state from a `State` or mapping, and/or keyword values."""
        if state is not None:
            if not isinstance(state, Mapping):
                msg = f"with_state() takes a State, a dict, or keyword values; got {type(state).__name__}."
                raise TypeError(msg)
            self._state = self._state.merge(state)
        self._state = self._state.update(**values)
        return self

    def with_entrypoint(self, name: str) -> ApplicationBuilder:
        """The action the application starts with."""
        self._entrypoint = name
        return self

    def with_identifiers(
        self, app_id: str | None = None, partition_key: str | None = None
    ) -> ApplicationBuilder:
        """The application's id (a fresh uuid4 if not given) and partition key (e.g. a user)."""
        self._app_id = app_id
        self._partition_key = partition_key
        return self

    def with_executor(self, executor: Any) -> ApplicationBuilder:
        """The default executor of every parallel action in the application and its sub-applications.

        An executor object or a name such as ``"threads"``, ``"processes"``,
        ``"async"``, ``"dask"`` or ``"ray"``; a parallel action's own
        ``executor()`` method overrides it.
        """
        self._executor = executor
        return self

    def with_persister(self, persister: PersisterProtocol) -> ApplicationBuilder:
        """Save the state after every step (and pass the persister down to sub-applications).

        Example:
            >>> from nbflow.persistence import InMemoryPersister
            >>> builder = ApplicationBuilder().with_persister(InMemoryPersister())
        """
        if not isinstance(persister, PersisterProtocol):
            msg = f"with_persister() takes a persister (nbflow.SQLitePersister(path), InMemoryPersister(), or an object with save/load/list_app_ids); got {type(persister).__name__}."
            raise TypeError(msg)
        self._persister = persister
        return self

    def initialize_from(
        self,
        persister: PersisterProtocol,
        resume_at_next_action: bool = True,
        default_state: State | Mapping[str, Any] | None = None,
        default_entrypoint: str | None = None,
    ) -> ApplicationBuilder:
        """Start from the latest saved step of this app id (and partition key), or from the defaults.

        Args:
            persister: where to look.
            resume_at_next_action: go on after the saved step (a failed step is
                run again); if false, start at ``default_entrypoint`` with the saved state.
            default_state: the state of a first run, when nothing is saved.
            default_entrypoint: the entrypoint of a first run (defaults to ``with_entrypoint``).

        With no app id given, the most recent application of the partition key is resumed.
        Loading does not save: add ``with_persister`` for that.
        """
        if not isinstance(persister, PersisterProtocol):
            msg = f"initialize_from() takes a persister with save/load/list_app_ids; got {type(persister).__name__}."
            raise TypeError(msg)
        self._initialize = (persister, resume_at_next_action, default_state, default_entrypoint)
        return self

    def with_tracker(self, *trackers: LifecycleHook) -> ApplicationBuilder:
        """Record every step with ``trackers`` (e.g. `nbflow.LocalTracker`), sub-applications too."""
        for tracker in trackers:
            if not isinstance(tracker, LifecycleHook):
                msg = f"with_tracker() takes trackers such as nbflow.LocalTracker(project); got {type(tracker).__name__}."
                raise TypeError(msg)
        self._tracker = trackers[0] if len(trackers) == 1 else HookGroup(trackers)
        return self

    def with_hooks(self, *hooks: LifecycleHook) -> ApplicationBuilder:
        """Attach `LifecycleHook` instances, called in the order given."""
        for hook in hooks:
            if not isinstance(hook, LifecycleHook):
                msg = f"with_hooks() takes LifecycleHook instances; got {type(hook).__name__}. Subclass nbflow.LifecycleHook and override pre_step/post_step/pre_run/post_run."
                raise TypeError(msg)
        self._hooks.extend(hooks)
        return self

    def build(self) -> Application:
        """The application, validated: known entrypoint, and every key read is present or written.

        Raises:
            GraphError: no entrypoint, an unknown one, or a key that nothing provides.
        """
        graph = self._build_graph()
        state, entrypoint, app_id, sequence_id = self._state, self._entrypoint, self._app_id, 0
        restored = self._restore(graph)
        if restored is not None:
            state, entrypoint, app_id, sequence_id = restored
        else:
            if self._initialize is not None:
                _, _, default_state, default_entrypoint = self._initialize
                state = state.merge(default_state) if default_state is not None else state
                entrypoint = default_entrypoint or entrypoint
            if entrypoint is None:
                msg = f"The application has no entrypoint. Call .with_entrypoint(name) with one of {sorted(graph.actions)}."
                raise GraphError(msg)
            graph.check_name(entrypoint, "with_entrypoint()")
        self._check_keys_provided(graph, state)
        hooks = list(self._hooks)
        if self._persister is not None:
            hooks.append(PersistHook(self._persister))
        if self._tracker is not None:
            hooks.append(self._tracker)
        return Application(
            graph,
            state,
            entrypoint,
            app_id=app_id or str(uuid.uuid4()),
            partition_key=self._partition_key,
            hooks=hooks,
            sequence_id=sequence_id,
            executor=self._executor,
            persister=self._persister,
            tracker=self._tracker,
        )

    def _restore(self, graph: Graph) -> tuple[State, str | None, str, int] | None:
        if self._initialize is None:
            return None
        persister, resume, default_state, default_entrypoint = self._initialize
        record = persister.load(self._partition_key, self._app_id)
        if record is None:
            if default_state is None and default_entrypoint is None and self._entrypoint is None:
                known = persister.list_app_ids(self._partition_key)
                msg = f"initialize_from() found no saved state for app id {self._app_id!r} (partition key {self._partition_key!r}) and has no defaults to start from. Pass default_state=... and default_entrypoint=... for a first run, or use a saved app id: {known[:10]}."
                raise GraphError(msg)
            return None
        if resume:
            next_action, sequence_id = resume_point(graph, record)
            return record.state, next_action.name if next_action else None, record.app_id, sequence_id
        entrypoint = default_entrypoint or self._entrypoint
        if entrypoint is None:
            msg = "initialize_from(resume_at_next_action=False) starts over at default_entrypoint; pass one, or call .with_entrypoint(name)."
            raise GraphError(msg)
        graph.check_name(entrypoint, "initialize_from(default_entrypoint=...)")
        return record.state, entrypoint, record.app_id, record.sequence_id + 1

    def _check_keys_provided(self, graph: Graph, state: State) -> None:
        provided = set(state) | graph.keys_written()
        for name, act in graph.actions.items():
            for key in declared(act, "reads"):
                if key not in provided:
                    msg = f"Action {name!r} reads {key!r}, but no action writes it and the initial state lacks it. Add it with .with_state({key}=...) or to the writes of an upstream action."
                    raise GraphError(msg)
        for t in graph.transitions:
            for key in t.condition.keys:
                if key not in provided:
                    msg = f"The condition {t.condition.name} on transition {t.source!r} -> {t.target!r} reads {key!r}, but no action writes it and the initial state lacks it. Add it with .with_state({key}=...) or to an action's writes."
                    raise GraphError(msg)
