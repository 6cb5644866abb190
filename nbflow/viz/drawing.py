"""Drawings of graphs and applications with Graphviz: `visualize`, `Drawing`, `DotNotFoundError`.

`visualize` only builds the DOT description, a `Drawing` (which is a
`graphviz.Digraph`), so it works without Graphviz's ``dot`` program. Rendering
needs ``dot``: writing a file, ``pipe()``, ``render()``, and showing the drawing
in Jupyter. Where ``dot`` is missing, those raise `DotNotFoundError`, which says
how to install it and carries the DOT source.

A parallel action (one whose ``fan_out`` is set) is a 3D box with what it fans
out to in a dashed cluster beside it: the sub-graphs its ``children()`` name
(the sub-graph each task runs, the branches of a `RunConcurrent` side by side),
or a generic "tasks" node when they depend on the state. Dashed edges fan out to
the cluster and back in. Drawing never imports the parallel layer: actions
describe themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import graphviz

from nbflow.core.actions import declared
from nbflow.core.application import Application
from nbflow.core.conditions import default
from nbflow.core.graph import Graph
from nbflow.errors import MissingDependencyError
from nbflow.viz.status import ActionStatus, attached_tracker

__all__ = ["Drawing", "DotNotFoundError", "visualize", "STATUS_COLOURS"]

STATUS_COLOURS = {"pending": "white", "running": "#ffd966", "done": "#b6d7a8", "failed": "#ea9999"}
# A parallel step's cluster of tasks, tinted like its step; its border red once a task failed.
_CLUSTER_TINTS = {"running": "#fff8e1", "done": "#eef6ea", "failed": "#fbeaea"}

# Node ids are action names with "%", "/" and ":" percent-encoded, joined by "/" for nested
# graphs; ids that start with a bare "%" can therefore never clash with an action's.
_START = "%start"
_TASKS = "%tasks"
_FONT = "Helvetica"


class DotNotFoundError(MissingDependencyError, graphviz.ExecutableNotFound):
    """Graphviz's ``dot`` program is not installed, so a drawing cannot be rendered.

    Attributes:
        source: the drawing's DOT text, which any Graphviz viewer can render.
    """

    def __init__(self, message: str, source: str) -> None:
        super().__init__(message)
        self.source = source


def _dot_missing(source: str) -> DotNotFoundError:
    msg = "Rendering a drawing needs Graphviz's `dot` program, which is not on PATH (`pip install graphviz` installs only the Python bindings). Install the Graphviz package: `sudo apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or `conda install -c conda-forge graphviz`. Meanwhile the DOT source is in exc.source, and in the drawing's .source."
    return DotNotFoundError(msg, source)


class Drawing(graphviz.Digraph):
    """A `graphviz.Digraph` that shows inline in Jupyter and names the fix when ``dot`` is missing.

    ``.source`` is the DOT text; ``pipe()``, ``render()`` and ``view()`` need
    Graphviz's ``dot`` program and raise `DotNotFoundError` without it.
    """

    def pipe(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound as exc:
            raise _dot_missing(self.source) from exc

    def render(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound as exc:
            raise _dot_missing(self.source) from exc


def visualize(
    target: Graph | Application,
    output_file: str | os.PathLike | None = None,
    *,
    format: str | None = None,
    show_conditions: bool = True,
    show_state_keys: bool = False,
    entrypoint: str | None = None,
    status: Mapping[str, ActionStatus] | None = None,
) -> Drawing:
    """Draw a graph or an application; with ``output_file``, also render the drawing there.

    Args:
        target: a `Graph` or an `Application`.
        output_file: where to write the rendered drawing. Without one nothing is
            rendered, so Graphviz's ``dot`` program is not needed.
        format: ``"svg"``, ``"png"``, ``"pdf"`` or any other format Graphviz
            knows; by default the suffix of ``output_file``, else ``"svg"``.
        show_conditions: label each conditional transition with its condition
            (transitions taken by ``default`` stay unlabelled).
        show_state_keys: list under each action the state keys it reads and writes.
        entrypoint: the action to mark as the start; an application marks the
            action it started from.
        status: colour each action by its `ActionStatus` (a `StatusTracker`
            snapshot, by action name). For an application it defaults to the
            record of a `StatusTracker` attached to it, if there is one.

    Returns:
        The `Drawing`; the last expression of a Jupyter cell shows it.

    Raises:
        DotNotFoundError: ``output_file`` was given and ``dot`` is not installed.
        ValueError: ``format`` is not one Graphviz knows.

    Example:
        >>> from nbflow import GraphBuilder, action, expr
        >>> @action(reads=["n"], writes=["n"])
        ... def tick(state):
        ...     return state.update(n=state["n"] + 1)
        >>> graph = GraphBuilder().with_actions(tick=tick).with_transitions(("tick", "tick", expr("n < 3"))).build()
        >>> drawing = visualize(graph, entrypoint="tick")
        >>> print(drawing.source.splitlines()[-2].strip())
        tick -> tick [label="'n < 3'"]
    """
    fmt = _format(output_file, format)
    if isinstance(target, Application):
        graph = target.graph
        entrypoint = entrypoint if entrypoint is not None else target.entrypoint
        if status is None:
            tracker = attached_tracker(target)
            status = tracker.snapshot(target.app_id) if tracker is not None else None
    elif isinstance(target, Graph):
        graph = target
    else:
        msg = f"visualize() draws a Graph or an Application; got {type(target).__name__}."
        raise TypeError(msg)
    drawing = Drawing(
        name="nbflow",
        format=fmt,
        graph_attr={"rankdir": "TB", "fontname": _FONT, "fontsize": "11"},
        node_attr={"shape": "box", "style": "rounded", "fontname": _FONT, "fontsize": "11"},
        edge_attr={"fontname": _FONT, "fontsize": "10"},
    )
    if entrypoint is not None:
        graph.check_name(entrypoint, "visualize(entrypoint=...)")
        drawing.node(_START, label="", shape="point", width="0.12")
        drawing.edge(_START, _join("", entrypoint))
    _Painter(show_conditions, show_state_keys).graph(drawing, graph, "", status)
    if output_file is not None:
        Path(output_file).write_bytes(drawing.pipe(format=fmt))
    return drawing


def _format(output_file: str | os.PathLike | None, format: str | None) -> str:
    if format is None:
        suffix = Path(output_file).suffix.lstrip(".").lower() if output_file is not None else ""
        return suffix if suffix in graphviz.FORMATS else "svg"
    if format not in graphviz.FORMATS:
        msg = f"visualize(format={format!r}): Graphviz has no such output format. Use 'svg', 'png' or 'pdf' (or another of {sorted(graphviz.FORMATS)})."
        raise ValueError(msg)
    return format


def _join(prefix: str, name: str) -> str:
    own = quote(name, safe="")
    return f"{prefix}/{own}" if prefix else own


def _text(*lines: str) -> str:
    # escape() keeps backslashes and <...> literal; the \n between lines is DOT's line break.
    return graphviz.nohtml("\\n".join(graphviz.escape(line) for line in lines))


class _Painter:
    def __init__(self, show_conditions: bool, show_state_keys: bool) -> None:
        self.show_conditions = show_conditions
        self.show_state_keys = show_state_keys

    def graph(
        self, body: graphviz.Digraph, graph: Graph, prefix: str, status: Mapping[str, ActionStatus] | None
    ) -> None:
        """Add ``graph``'s actions and transitions to ``body``, node ids under ``prefix``."""
        for name, act in graph.actions.items():
            own = status.get(name, ActionStatus()) if status is not None else None
            if act.fan_out is not None:
                self.parallel(body, _join(prefix, name), name, act, own)
            else:
                body.node(_join(prefix, name), label=self.label(name, act), **_colour(own, "rounded"))
        for t in graph.transitions:
            attrs = {}
            if self.show_conditions and t.condition is not default:
                attrs["label"] = _text(t.condition.name)
            body.edge(_join(prefix, t.source), _join(prefix, t.target), **attrs)

    def label(self, title: str, act: Any) -> str:
        if not self.show_state_keys:
            return _text(title)
        reads = ", ".join(declared(act, "reads")) or "(none)"
        writes = ", ".join(declared(act, "writes")) or "(none)"
        return _text(title, f"reads: {reads}", f"writes: {writes}")

    def parallel(
        self, body: graphviz.Digraph, node: str, name: str, act: Any, own: ActionStatus | None
    ) -> None:
        title = name if own is None or own.status == "pending" else f"{name} {own.progress()}"
        body.node(node, label=self.label(title, act), shape="box3d", **_colour(own, "solid"))
        subs = _children(act)
        entries: list[str] = []
        exits: list[str] = []
        with body.subgraph(name=f"cluster_{node}") as cluster:
            cluster.attr(
                label=act.fan_out, labelloc="b", style="dashed,rounded", color="grey50", fontcolor="grey40"
            )
            if own is not None and own.status in _CLUSTER_TINTS:
                cluster.attr(style="dashed,rounded,filled", fillcolor=_CLUSTER_TINTS[own.status])
                if own.failed:
                    cluster.attr(color="#cc0000", penwidth="2")
            if subs is None:
                tasks = f"{node}/{_TASKS}"
                cluster.node(tasks, label="tasks", style="dashed")
                entries.append(tasks)
                exits.append(tasks)
            for sub in subs or ():
                prefix = node if len(subs) == 1 else _join(node, sub.name)
                if len(subs) > 1 and len(sub.graph.actions) > 1:
                    # A branch of several actions gets a frame of its own, named after it.
                    with cluster.subgraph(name=f"cluster_{prefix}") as frame:
                        frame.attr(label=_text(sub.name), style="rounded", color="grey70")
                        self.graph(frame, sub.graph, prefix, None)
                else:
                    self.graph(cluster, sub.graph, prefix, None)
                entries.append(_join(prefix, sub.entrypoint))
                exits.extend(_join(prefix, h) for h in sub.halt_after)
        for entry in entries:
            if entry in exits:
                # A one-action sub-graph: out and back in as one two-headed edge.
                body.edge(node, entry, style="dashed", arrowhead="crow", arrowtail="empty", dir="both")
            else:
                body.edge(node, entry, style="dashed", arrowhead="crow")
        for exit_ in exits:
            if exit_ not in entries:
                # constraint=false: the edge back does not pull the cluster above its action.
                body.edge(exit_, node, style="dashed", arrowhead="empty", constraint="false")


def _children(act: Any) -> list[Any] | None:
    try:
        return act.children()
    except Exception:
        # A subclass's children() that fails means "not known": the drawing shows a generic node.
        return None


def _colour(own: ActionStatus | None, style: str) -> dict[str, str]:
    if own is None:
        return {"style": style}
    attrs = {"style": f"{style},filled", "fillcolor": STATUS_COLOURS[own.status], "tooltip": own.status}
    if own.status == "running":
        attrs["penwidth"] = "2"
    return attrs
