"""Graphs: named actions and the conditional transitions between them.

A `Graph` is immutable and reusable: many applications (and many parallel
sub-applications) can run the same one. Build it with `GraphBuilder`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nbflow.core.actions import Action, as_action, declared
from nbflow.core.conditions import Condition, default
from nbflow.core.extensions import use as extension
from nbflow.core.state import State
from nbflow.errors import GraphError

__all__ = ["Transition", "Graph", "GraphBuilder"]


@dataclass(frozen=True)
class Transition:
    """An edge ``source -> target``, taken when ``condition`` holds on the state."""

    source: str
    target: str
    condition: Condition = default


class Graph:
    """Actions by name and the transitions between them, in the order they were given.

    After an action runs, the first of its outgoing transitions whose condition
    holds decides the next action; with none, the application halts.
    """

    def __init__(self, actions: Mapping[str, Action], transitions: Sequence[Transition]) -> None:
        self.actions: dict[str, Action] = dict(actions)
        self.transitions: tuple[Transition, ...] = tuple(transitions)
        self._outgoing: dict[str, list[Transition]] = {name: [] for name in self.actions}
        for t in self.transitions:
            self._outgoing[t.source].append(t)

    def __contains__(self, name: object) -> bool:
        return name in self.actions

    def __getitem__(self, name: str) -> Action:
        try:
            return self.actions[name]
        except KeyError:
            msg = f"The graph has no action {name!r}. Known actions: {sorted(self.actions)}."
            raise GraphError(msg) from None

    def outgoing(self, name: str) -> list[Transition]:
        """The transitions out of action ``name``, in priority order."""
        return self._outgoing[name]

    def next_action(self, name: str, state: State) -> Action | None:
        """The action after ``name`` given ``state``, or None when no transition applies."""
        for t in self._outgoing[name]:
            if t.condition(state):
                return self.actions[t.target]
        return None

    def check_name(self, name: str, role: str) -> None:
        """Raise a `GraphError` naming ``role`` if ``name`` is not an action of this graph."""
        if name not in self.actions:
            msg = f"{role} names {name!r}, which is not an action of this graph. Known actions: {sorted(self.actions)}."
            raise GraphError(msg)

    def keys_written(self) -> set[str]:
        """Every state key some action of the graph declares it writes."""
        return {k for a in self.actions.values() for k in declared(a, "writes")}

    def visualize(
        self,
        output_file: str | os.PathLike | None = None,
        *,
        format: str | None = None,
        show_conditions: bool = True,
        show_state_keys: bool = False,
        entrypoint: str | None = None,
    ) -> Any:
        """Draw the graph as a ``graphviz.Digraph`` (shown inline in Jupyter); see `nbflow.viz.visualize`.

        Args:
            output_file: also render the drawing to this file (needs Graphviz's ``dot`` program).
            format: ``"svg"``, ``"png"`` or ``"pdf"``; by default ``output_file``'s suffix, else svg.
            show_conditions: label conditional transitions with their condition.
            show_state_keys: list each action's reads and writes.
            entrypoint: the action to mark as the start.
        """
        # Drawing lives in nbflow.viz, above the core: it lends it through the registry.
        return extension("visualize")(
            self,
            output_file,
            format=format,
            show_conditions=show_conditions,
            show_state_keys=show_state_keys,
            entrypoint=entrypoint,
        )

    def __repr__(self) -> str:
        return f"Graph(actions={list(self.actions)}, transitions={len(self.transitions)})"


class _GraphAssembly:
    """The ``with_actions``/``with_transitions`` half shared by both builders."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}
        self._transitions: list[tuple[Any, ...]] = []

    def with_actions(self, *named: Action, **actions: Action):
        """Add actions, by keyword (``name=action``) or positionally when they carry a name."""
        for act in named:
            name = getattr(act, "name", None)
            if not isinstance(act, Action) or not name:
                msg = f"A positional action must be a named nbflow Action (give it a name with .with_name('...')); got {act!r}. Or pass it by keyword: with_actions(name=action)."
                raise GraphError(msg)
            self._add(name, act)
        for name, act in actions.items():
            self._add(name, act)
        return self

    def _add(self, name: str, act: Any) -> None:
        if name in self._actions:
            msg = f"Action name {name!r} is used twice. Give each action a unique name (with_actions(name=...) or .with_name('...'))."
            raise GraphError(msg)
        self._actions[name] = as_action(act, name)

    def with_transitions(self, *transitions: tuple[Any, ...]):
        """Add transitions ``(source, target)`` or ``(source, target, condition)``.

        ``source`` may be a list of names. Transitions out of one action are
        tried in the order given; the first whose condition holds wins.
        """
        for t in transitions:
            if not isinstance(t, tuple) or len(t) not in (2, 3):
                msg = f"A transition is (source, target) or (source, target, condition); got {t!r}."
                raise GraphError(msg)
            self._transitions.append(t)
        return self

    def _extend_from(self, graph: Graph) -> None:
        for name, act in graph.actions.items():
            self._add(name, act)
        self._transitions.extend((t.source, t.target, t.condition) for t in graph.transitions)

    def _build_graph(self) -> Graph:
        if not self._actions:
            msg = "The graph has no actions. Add some with .with_actions(name=action, ...)."
            raise GraphError(msg)
        resolved = []
        for raw in self._transitions:
            sources, target = raw[0], raw[1]
            condition = raw[2] if len(raw) == 3 else default
            if not isinstance(condition, Condition):
                msg = f"The condition of transition {raw[:2]!r} must be when(...), expr(...) or default; got {type(condition).__name__}."
                raise GraphError(msg)
            for source in _names(sources):
                for end, role in ((source, "source"), (target, "target")):
                    if end not in self._actions:
                        msg = f"Transition {source!r} -> {target!r}: {role} {end!r} is not an action. Known actions: {sorted(self._actions)}. Add it with .with_actions({end}=...) or fix the name."
                        raise GraphError(msg)
                resolved.append(Transition(source, target, condition))
        return Graph(self._actions, resolved)


def _names(sources: Any) -> Iterable[str]:
    if isinstance(sources, str):
        return (sources,)
    if isinstance(sources, (list, tuple)):
        return sources
    msg = f"A transition's source is an action name or a list of names; got {sources!r}."
    raise GraphError(msg)


class GraphBuilder(_GraphAssembly):
    """Builds a reusable `Graph`.

    Example:
        >>> from nbflow import action, expr, default
        >>> @action(reads=["n"], writes=["n"])
        ... def tick(state):
        ...     return state.update(n=state["n"] + 1)
        >>> graph = (
        ...     GraphBuilder()
        ...     .with_actions(tick=tick)
        ...     .with_transitions(("tick", "tick", expr("n < 3")))
        ...     .build()
        ... )
        >>> graph
        Graph(actions=['tick'], transitions=1)
    """

    def build(self) -> Graph:
        """The graph, validated: every transition names known actions."""
        return self._build_graph()
