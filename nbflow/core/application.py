"""`Application`: a graph, a current state and a next action, run step by step or to a halt.

Build one with `nbflow.core.builder.ApplicationBuilder`. Steps are numbered from 0. As in Burr,
``sequence_id`` is the id of the last completed step (None before the first), which is the id the
persister and the tracker record that step under; an action running in a step sees that step's
own id in its context.
A step that raises leaves ``state`` as it was before it, so nothing already
computed is lost and the step can be retried.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping
from typing import Any

from nbflow.core.actions import Action, ApplicationContext
from nbflow.core.extensions import use as extension
from nbflow.core.graph import Graph
from nbflow.core.hooks import LifecycleHook, afire, fire
from nbflow.core.machines import HAND_OUT, acomplete, adrive, complete, drive
from nbflow.core.state import State
from nbflow.core.step import StepOutcome, aexecute_step, execute_step
from nbflow.errors import AsyncActionError, HaltError

__all__ = ["Application"]

StepResult = tuple[Action, Any, State]

# What the step machine asks its driver for: fire a hook; run an action.
_FIRE, _EXECUTE = "fire", "execute"


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
        (3, True, 3)
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
        # The id the next step gets; `sequence_id` is the one before it.
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
    def sequence_id(self) -> int | None:
        """The id of the last completed step, or None before the first (Burr's convention).

        ``state_at(app.app_id, app.sequence_id, tracker)`` and the persister's latest
        record both refer to the step this names.
        """
        return self._sequence_id - 1 if self._sequence_id else None

    @property
    def next_action(self) -> Action | None:
        """The action the next step will run, or None once the graph has halted."""
        return self._next

    def get_next_action(self) -> Action | None:
        """`next_action`, under Apache Burr's name."""
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
        # Drawing lives in nbflow.viz, above the core: it lends it through the registry.
        return extension("visualize")(
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
        return act, functools.partial(self.context, act), time.perf_counter()

    def _pre_step(self, act: Action, inputs: Mapping[str, Any] | None) -> dict:
        return dict(
            app=self, action=act, state=self._state, inputs=dict(inputs or {}), sequence_id=self._sequence_id
        )

    def _after(
        self, act: Action, started: float, outcome: StepOutcome | None, exc: BaseException | None
    ) -> dict:
        """Commit a finished step (or annotate a failed one); return the post_step hook arguments."""
        seq = self._sequence_id
        event = dict(app=self, action=act, sequence_id=seq, duration_s=time.perf_counter() - started)
        if exc is not None:
            # A task's sub-application is nbflow's, not the user's: its id would only confuse.
            if self.parent is None and hasattr(exc, "add_note"):
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
        return complete(self._step_machine(inputs, sync=True), self._perform)

    async def astep(self, inputs: Mapping[str, Any] | None = None) -> StepResult | None:
        """`step` for async code: awaits async actions and runs sync ones inline."""
        return await acomplete(self._step_machine(inputs, sync=False), self._aperform)

    # -- the step machine: the logic once, for `_perform` to call and `_aperform` to await ------

    def _step_machine(self, inputs: Mapping[str, Any] | None, sync: bool) -> Generator[tuple, Any, Any]:
        begun = self._begin(inputs, sync)
        if begun is None:
            return None
        act, ctx, started = begun
        if self.hooks:
            yield (_FIRE, "pre_step", self._pre_step(act, inputs))
        try:
            outcome = yield (_EXECUTE, act, inputs, ctx)
        except BaseException as exc:
            event = self._after(act, started, None, exc)
            if self.hooks:
                yield (_FIRE, "post_step", event)
            raise
        event = self._after(act, started, outcome, None)
        if self.hooks:
            yield (_FIRE, "post_step", event)
        return act, outcome.result, outcome.state

    def _run_machine(
        self,
        halt_after: Iterable[str] | None,
        halt_before: Iterable[str] | None,
        inputs: Mapping[str, Any] | None,
        sync: bool,
    ) -> Generator[tuple, Any, Any]:
        after, before = self._halts(halt_after, halt_before)
        if self.hooks:
            event = dict(app=self, halt_after=after, halt_before=before, inputs=dict(inputs or {}))
            yield (_FIRE, "pre_run", event)
        last: StepResult = (None, None, self._state)  # type: ignore[assignment]
        exception = None
        try:
            while self._next is not None:
                if self._next.name in before:
                    last = (self._next, None, self._state)
                    break
                last = yield from self._step_machine(inputs, sync)
                yield (HAND_OUT, last)
                if last[0].name in after:
                    break
        except BaseException as exc:
            exception = exc
            raise
        finally:
            if self.hooks:
                event = dict(app=self, action=last[0], result=last[1], state=self._state, exception=exception)
                yield (_FIRE, "post_run", event)
        return last

    def _perform(self, request: tuple) -> Any:
        if request[0] == _FIRE:
            return fire(self.hooks, request[1], **request[2])
        return execute_step(request[1], self._state, request[2], request[3])

    async def _aperform(self, request: tuple) -> Any:
        if request[0] == _FIRE:
            return await afire(self.hooks, request[1], **request[2])
        return await aexecute_step(request[1], self._state, request[2], request[3])

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
            # The live view lives in nbflow.widgets, above the core: it lends it through the registry.
            with extension("show_graph_live")(self):
                return (
                    yield from self.iterate(halt_after=halt_after, halt_before=halt_before, inputs=inputs)
                )
        return (
            yield from drive(self._run_machine(halt_after, halt_before, inputs, sync=True), self._perform)
        )

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
        if display:
            with extension("show_graph_live")(self):
                return self.run(halt_after=halt_after, halt_before=halt_before, inputs=inputs)
        return complete(self._run_machine(halt_after, halt_before, inputs, sync=True), self._perform)

    def aiterate(
        self,
        *,
        halt_after: Iterable[str] | None = None,
        halt_before: Iterable[str] | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[StepResult, None]:
        """`iterate` for async code: an async generator of ``(action, result, state)``."""
        return adrive(self._run_machine(halt_after, halt_before, inputs, sync=False), self._aperform, [])

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
            with extension("show_graph_live")(self):
                return await self.arun(halt_after=halt_after, halt_before=halt_before, inputs=inputs)
        return await acomplete(self._run_machine(halt_after, halt_before, inputs, sync=False), self._aperform)
