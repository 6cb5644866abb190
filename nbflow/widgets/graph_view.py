"""`GraphView`: an application's graph in a notebook, coloured live as it runs.

The view is an ``ipywidgets.HTML`` holding the SVG Graphviz makes of
`nbflow.viz.visualize`. It attaches a `StatusTracker` to the application and
redraws from whichever thread a hook fires on, at most once every
``interval_s``; an event that comes too soon is drawn by a short timer instead,
so the view never lags behind a step that runs for a long time. When a run of
the application ends, it redraws at once.
"""

from __future__ import annotations

import contextlib
import html
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets

from nbflow.notebook.live import in_notebook
from nbflow.viz import DotNotFoundError, StatusTracker, attach_tracker, visualize

__all__ = ["GraphView"]


class GraphView(ipywidgets.HTML):
    """An application's graph as a widget: pending, running, done and failed actions in colour.

    A parallel step shows its tasks as they finish, e.g. ``train 37/50 (2 failed)``.
    The view stays attached, across runs, until `detach`.

    Args:
        app: the `Application` to watch.
        show_conditions: label conditional transitions with their condition.
        show_state_keys: list each action's reads and writes.
        interval_s: the shortest time between two redraws while it runs.

    Example:
        >>> from nbflow import ApplicationBuilder, action
        >>> @action(reads=[], writes=["x"])
        ... def one(state):
        ...     return state.update(x=1)
        >>> app = ApplicationBuilder().with_actions(one=one).with_entrypoint("one").build()
        >>> view = GraphView(app)      # the last line of a cell shows it
        >>> _ = app.run()              # `one` turns green in the view
        >>> view.detach()
    """

    def __init__(
        self,
        app: Any,
        *,
        show_conditions: bool = True,
        show_state_keys: bool = False,
        interval_s: float = 0.25,
    ) -> None:
        super().__init__()
        self.app = app
        self.interval_s = interval_s
        self._options = {"show_conditions": show_conditions, "show_state_keys": show_state_keys}
        self._lock = threading.Lock()  # guards the throttle: _last, _timer, _dirty, _attached
        self._draw_lock = threading.Lock()  # one redraw at a time, so an older one never lands last
        self._last = float("-inf")
        self._timer: threading.Timer | None = None
        self._dirty = False
        self.tracker = StatusTracker(on_change=self._changed)
        self._detach: Callable[[], None] | None = attach_tracker(app, self.tracker)
        self.redraw()

    @classmethod
    @contextlib.contextmanager
    def showing(
        cls, app: Any, *, show: Callable[[Any], Any] | None = None, **options: Any
    ) -> Iterator[GraphView | None]:
        """Show a view of ``app`` for the duration of the block, then detach it.

        What ``app.run(display=True)`` uses. Outside Jupyter nothing is shown and
        nothing is attached (the block gets None), unless ``show`` is given.

        Args:
            app: the application to watch.
            show: how to show the view; IPython's ``display`` in a notebook.
            **options: passed to `GraphView`.
        """
        if show is None:
            if not in_notebook():
                yield None
                return
            from IPython.display import display as show
        view = cls(app, **options)
        show(view)
        try:
            yield view
        finally:
            view.detach()

    def redraw(self) -> None:
        """Draw the graph with the statuses recorded so far, now."""
        with self._draw_lock:
            with self._lock:
                self._dirty = False
            drawing = visualize(self.app, status=self.tracker.snapshot(self.app.app_id), **self._options)
            try:
                svg = drawing.pipe(format="svg", encoding="utf-8")
            except DotNotFoundError as exc:
                self.value = f"<pre>{html.escape(str(exc))}\n\n{html.escape(exc.source)}</pre>"
                return
            # Drop the XML prologue and doctype, which do not belong inside an HTML element.
            self.value = svg[svg.find("<svg") :]

    def detach(self) -> None:
        """Stop following the application, after a last redraw if anything changed."""
        with self._lock:
            detach, self._detach = self._detach, None
        if detach is not None:
            detach()
        self._flush()

    # -- throttled redraws, called from hooks on any thread -----------------------------------

    def _changed(self, event: str, app: Any) -> None:
        if event == "post_run" and app is self.app:
            self._flush()
            return
        with self._lock:
            self._dirty = True
            wait = self._last + self.interval_s - time.monotonic()
            # A task's count is told on the thread taking the step's results: draw it on the timer's
            # instead, so that rendering with dot never holds up the step.
            if wait > 0 or event in ("task_finished", "tasks_known"):
                if self._timer is None:
                    self._timer = threading.Timer(max(wait, 0.0), self._trailing)
                    self._timer.name = "nbflow-graph-view"
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._last = time.monotonic()
        self._safe_redraw()

    def _trailing(self) -> None:
        with self._lock:
            if self._timer is threading.current_thread():
                self._timer = None
            self._last = time.monotonic()
        self._safe_redraw()

    def _flush(self) -> None:
        """Cancel a pending timer and redraw now if anything changed since the last redraw."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            # No thread of ours outlives the run it drew.
            timer.join()
        with self._lock:
            dirty = self._dirty
            self._last = time.monotonic()
        if dirty:
            self._safe_redraw()

    def _safe_redraw(self) -> None:
        try:
            self.redraw()
        except Exception as exc:
            # A hook must never fail the run it watches; show what went wrong instead.
            self.value = f"<pre>nbflow could not draw the graph: {html.escape(repr(exc))}</pre>"
