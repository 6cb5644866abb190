"""What a running sweep shows in Jupyter: a table and a plot that update in place, then a summary.

Jupyter is detected by ``tqdm.autonotebook``'s rules: a kernel's ZMQ shell is
loaded (or JupyterLite's), and it is not qtconsole or Spyder, which cannot
render widgets. Nothing here imports IPython outside a notebook.

While the sweep runs, one ``ipywidgets.HTML`` shows the counts, the last rows, and beside them
the curves the points report (`nbflow.report`), running points included. A thread of its own
redraws it, at most every ``interval_s``, when something changed: a result or a report. So a
point costs the sweep only a flag, and a long point's curve grows on screen between results.
When the sweep ends the widget empties, and a static summary takes its place: the counts, the
last rows, and the final plot as an image. That is what a saved notebook keeps, and what a
reader without the kernel (GitHub, nbviewer) sees.
"""

from __future__ import annotations

import base64
import html
import io
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from nbflow.errors import summarize_exception
from nbflow.sweeps.curves import step_column
from nbflow.sweeps.naming import run_column

__all__ = ["in_notebook", "LiveTable", "live_table"]


def in_notebook() -> bool:
    """Whether this code runs where widgets render: a Jupyter kernel, not a terminal, qtconsole or Spyder."""
    if "IPython.utils._process_emscripten" in sys.modules:
        return True  # JupyterLite
    if "ipykernel.zmqshell" not in sys.modules or "IPython" not in sys.modules:
        return False
    if any(name == "QT_API" or name.startswith("SPYDER") for name in os.environ):
        return False  # qtconsole and Spyder show text, not widgets
    shell = sys.modules["IPython"].get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return False
    kind = type(shell).__name__.lower()
    return "qt" not in kind and "spyder" not in kind


def live_table(frame: Callable[[], Any], **options: Any) -> LiveTable | None:
    """A shown `LiveTable` of ``frame()`` when this is a notebook, else None (what a sweep asks for)."""
    if not in_notebook():
        return None
    table = LiveTable(frame, **options)
    table.show()
    return table


_FAILED = ("error", "timeout")
_FAILED_ROW = ' style="background-color: rgba(220, 38, 38, 0.12)"'
# A point a search stopped early: not a failure, but no finished value either.
_PRUNED_ROW = ' style="color: #6b7280; background-color: rgba(107, 114, 128, 0.08)"'
_TINTS = {"error": _FAILED_ROW, "timeout": _FAILED_ROW, "pruned": _PRUNED_ROW}


class LiveTable:
    """A table (and a plot of reported curves) in a notebook output, redrawn while the sweep grows.

    Args:
        frame: the results so far (called from the redrawing thread: it must be safe to).
        interval_s: the least time between two redraws.
        max_rows: how many of the last rows are shown.
        total: how many points the sweep has, for ``37 of 60 done``.
        curves: the reports so far, as ``(curves frame, axes, task id column)``; None for no plot.
        best: a search's ``(metric, mode)``: a plot of the best so far against trial number too.

    It looks like pandas' own table of the last ``max_rows`` rows, under a line such as
    ``37 of 60 done, 2 failed``; failed rows are tinted, and missing values are blank (an ok
    row has no error to show).
    """

    def __init__(
        self,
        frame: Callable[[], Any],
        interval_s: float = 0.5,
        max_rows: int = 20,
        total: int | None = None,
        curves: Callable[[], tuple[Any, list, str]] | None = None,
        best: tuple[str, str] | None = None,
    ) -> None:
        self._frame = frame
        self._curves = curves
        self._best = best
        self.interval_s = interval_s
        self.max_rows = max_rows
        self.total = total
        self._widget: Any = None
        self._dirty = False
        self._stop = threading.Event()
        self._painter: threading.Thread | None = None
        self._paint_cost = 0.0

    def show(self) -> None:
        """Display the widget (in the cell running the sweep: call it from that cell's thread)."""
        import ipywidgets
        from IPython.display import display

        self._widget = ipywidgets.HTML()
        display(self._widget)
        self._painter = threading.Thread(target=self._paint_loop, name="nbflow-live", daemon=True)
        self._painter.start()

    def refresh(self) -> None:
        """Something changed: the view redraws within ``interval_s``."""
        self._dirty = True

    def _paint_loop(self) -> None:
        # A redraw builds the frame of every row so far and draws the curves: on a large sweep or a
        # slow machine that takes a while, and the view waits ten times as long before the next,
        # to keep to a tenth of the driver's time.
        while not self._stop.wait(max(self.interval_s, 10 * self._paint_cost)):
            if self._dirty:
                self._dirty = False
                try:
                    self._paint()
                except Exception as exc:
                    # The view must never stop the sweep it shows; say what went wrong instead.
                    self._widget.value = (
                        f"<pre>nbflow could not draw the live view: {html.escape(repr(exc))}</pre>"
                    )

    def _paint(self) -> None:
        if self._widget is None:
            return
        started = time.monotonic()
        frame = self._frame()
        table = self.render(frame)
        png, note = self._safe_plot(frame)
        self._widget.value = (_beside(table, png) if png else table) + note
        self._paint_cost = time.monotonic() - started

    def _safe_plot(self, frame: Any) -> tuple[bytes | None, str]:
        """The plot, or None and a note saying why it could not be drawn: the rows matter more."""
        try:
            return self._plot_png(frame), ""
        except Exception as exc:
            return (
                None,
                f"<div><i>The plot could not be drawn: {html.escape(summarize_exception(exc))}</i></div>",
            )

    def _plot_png(self, frame: Any) -> bytes | None:
        """The curves (and a search's best so far) as a PNG; None when there is nothing to plot (or no matplotlib)."""
        panels = []
        if self._curves is not None:
            curves, axes, task = self._curves()
            metrics = [c for c in curves.columns if c not in (*axes, task, step_column(axes, task))]
            if metrics:
                panels.append(lambda ax: plot_curves(curves, metrics[0], axes=axes, task=task, ax=ax))
        if self._best is not None and self._best[0] in frame.columns and _finished(frame, self._best[0]):
            metric, mode = self._best
            panels.append(lambda ax: plot_best(frame, metric, mode=mode, ax=ax))
        if not panels:
            return None
        try:
            from matplotlib.figure import Figure
        except ImportError:
            return None  # the live plot is the `plot` extra's; the table is drawn all the same
        from nbflow.sweeps.plots import plot_best, plot_curves

        figure = Figure(figsize=(4.8 * len(panels), 3.2), dpi=80, layout="constrained")
        for draw, ax in zip(panels, figure.subplots(1, len(panels), squeeze=False)[0], strict=True):
            draw(ax)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def render(self, frame: Any) -> str:
        """The HTML for ``frame``: the counts line, then the table of its last rows."""
        statuses = _statuses(frame)
        failed = sum(s in _FAILED for s in statuses)
        done = f"{len(frame)} of {self.total} done" if self.total is not None else f"{len(frame)} done"
        counts = done + (f", {failed} failed" if failed else "")
        # Before the first row, a table of headers only would say nothing the counts do not.
        table = self._table(frame, statuses) if len(frame) else ""
        return f"<div>{html.escape(counts)}</div>{table}"

    def _table(self, frame: Any, statuses: list) -> str:
        shown = frame.tail(self.max_rows) if len(frame) > self.max_rows else frame
        table = _blank_gaps(shown).to_html(max_cols=20, na_rep="")
        # pandas writes one "<tr>" per body row, in order: tint those that failed or were pruned.
        tints = [_TINTS.get(s, "") for s in statuses[len(statuses) - len(shown) :]]
        head, tbody, body = table.partition("<tbody>")
        first, *rows = body.split("<tr>")
        body = first + "".join(
            "<tr" + (tints[position] if position < len(tints) else "") + ">" + row
            for position, row in enumerate(rows)
        )
        return f"{head}{tbody}{body}"

    def close(self, summary: str) -> None:
        """Stop redrawing; leave a static ``summary`` line, the last rows and the final plot.

        The rows leave out ``duration_s``, which differs from run to run where the results do not.
        """
        self._stop.set()
        if self._painter is not None:
            self._painter.join()
        if self._widget is None:
            return
        from IPython.display import Image, display

        self._widget.value = ""
        frame = self._frame()
        duration = run_column(frame, "duration_s")
        rows = frame.drop(columns=[duration]) if duration in frame.columns else frame
        table = self._table(rows, _statuses(frame)) if len(frame) else ""
        png, note = self._safe_plot(frame)
        display({"text/html": f"<b>{html.escape(summary)}</b>{table}{note}", "text/plain": summary}, raw=True)
        if png:
            display(Image(data=png, format="png"))


def _finished(frame: Any, metric: str) -> bool:
    """Whether some row finished with a number for ``metric``: a best-so-far plot has a point."""
    from nbflow.sweeps.plots import is_number

    status = run_column(frame, "status")
    return is_number(frame[metric]) and bool(
        frame.loc[frame[status].isin(("ok", "cached")), metric].notna().any()
    )


def _statuses(frame: Any) -> list[str]:
    status = run_column(frame, "status")
    return frame[status].tolist() if status in frame.columns else []


def _beside(table: str, png: bytes) -> str:
    image = base64.b64encode(png).decode("ascii")
    return (
        '<div style="display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start">'
        f'<div>{table}</div><img src="data:image/png;base64,{image}" alt="curves"></div>'
    )


def _blank_gaps(frame: Any) -> Any:
    """``frame`` with the gaps of its nullable columns (``Int64``, ``Float64``, ``boolean``) blank.

    ``to_html(na_rep=...)`` blanks NaN but prints ``<NA>`` for those; as objects their values
    still print as themselves (ints as ints).
    """
    nullable = [
        c for c, t in frame.dtypes.items() if getattr(t, "na_value", None) is not None and t.kind in "iubf"
    ]
    if not nullable:
        return frame
    blanked = frame.copy()
    for column in nullable:
        values = blanked[column]
        blanked[column] = values.astype(object).where(values.notna(), "")
    return blanked
