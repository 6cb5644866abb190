"""`ApplicationBuilder`: the fluent assembly of an `Application` (graph, state, persistence, hooks).

Kept apart from `nbflow.core.application` so that module holds only the running
engine; this one holds configuration, validation at ``build()`` and resuming from a persister.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from nbflow.core.actions import declared
from nbflow.core.application import Application
from nbflow.core.graph import Graph, _GraphAssembly
from nbflow.core.hooks import HookGroup, LifecycleHook, as_hook
from nbflow.core.persistence import PersisterProtocol, PersistHook, load_record, resume_point
from nbflow.core.state import State
from nbflow.errors import GraphError

__all__ = ["ApplicationBuilder"]


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

    def with_state_persister(self, persister: PersisterProtocol) -> ApplicationBuilder:
        """`with_persister`, under Apache Burr's name."""
        return self.with_persister(persister)

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

    def with_tracker(self, *trackers: Any) -> ApplicationBuilder:
        """Record every step with ``trackers`` (e.g. `nbflow.LocalTracker`), sub-applications too.

        A Burr-style tracking client (with ``pre_run_step``/``post_run_step``) works too; one
        with a ``copy()`` method gets a copy for each sub-application.
        """
        hooks = []
        for tracker in trackers:
            hook = as_hook(tracker)
            if hook is None:
                msg = f"with_tracker() takes trackers such as nbflow.LocalTracker(project), or a Burr-style tracker with pre_run_step/post_run_step; got {type(tracker).__name__}."
                raise TypeError(msg)
            hooks.append(hook)
        self._tracker = hooks[0] if len(hooks) == 1 else HookGroup(hooks)
        return self

    def with_hooks(self, *hooks: Any) -> ApplicationBuilder:
        """Attach hooks, called in the order given: `LifecycleHook` instances, or Burr-style hooks."""
        for hook in hooks:
            adapted = as_hook(hook)
            if adapted is None:
                msg = f"with_hooks() takes LifecycleHook instances, or Burr hooks (PreRunStepHook, PostRunStepHook...); got {type(hook).__name__}. Subclass nbflow.LifecycleHook and override pre_step/post_step/pre_run/post_run."
                raise TypeError(msg)
            self._hooks.append(adapted)
        return self

    def build(self) -> Application:
        """The application, validated: known entrypoint, and every key read is present or written.

        Raises:
            GraphError: no entrypoint, an unknown one, or a key that nothing provides.
        """
        graph = self._build_graph()
        self._restored_from: int | None = None
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
            hooks.append(PersistHook(self._persister, after=self._restored_from))
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
        record = load_record(persister, self._partition_key, self._app_id)
        if record is None:
            if default_state is None and default_entrypoint is None and self._entrypoint is None:
                known = persister.list_app_ids(self._partition_key)
                msg = f"initialize_from() found no saved state for app id {self._app_id!r} (partition key {self._partition_key!r}) and has no defaults to start from. Pass default_state=... and default_entrypoint=... for a first run, or use a saved app id: {known[:10]}."
                raise GraphError(msg)
            return None
        if persister is self._persister:
            self._restored_from = record.sequence_id
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
