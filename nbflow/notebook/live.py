"""What a running sweep shows in Jupyter: a table that updates in place.

Jupyter is detected by ``tqdm.autonotebook``'s rules: a kernel's ZMQ shell is
loaded (or JupyterLite's), and it is not qtconsole or Spyder, which cannot
render widgets. Nothing here imports IPython outside a notebook.
"""

from __future__ import annotations

import html
import os
import sys
import time
from collections.abc import Callable
from typing import Any

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
    """A `LiveTable` of ``frame()`` when this is a notebook, else None (what a sweep asks for)."""
    return LiveTable(frame, **options) if in_notebook() else None


_FAILED = ("error", "timeout")
_FAILED_ROW = ' style="background-color: rgba(220, 38, 38, 0.12)"'


class LiveTable:
    """A table in a notebook output that redraws as the sweep grows, at most every ``interval_s``.

    It is an ``ipywidgets.HTML`` whose value is replaced, rather than a display that is
    updated: widget state survives being saved in a notebook and does not churn its outputs.
    It looks like pandas' own table of the last ``max_rows`` rows, under a line such as
    ``37 of 60 done, 2 failed``; failed rows are tinted, and missing values are blank (an ok
    row has no error to show).
    """

    def __init__(
        self, frame: Callable[[], Any], interval_s: float = 0.5, max_rows: int = 20, total: int | None = None
    ) -> None:
        self._frame = frame
        self.interval_s = interval_s
        self.max_rows = max_rows
        self.total = total
        self._widget: Any = None
        self._last = 0.0

    def refresh(self, force: bool = False) -> None:
        """Redraw the table if ``interval_s`` has passed since the last redraw (always when ``force``)."""
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        value = self.render(self._frame())
        if self._widget is None:
            import ipywidgets
            from IPython.display import display

            self._widget = ipywidgets.HTML()
            display(self._widget)
        self._widget.value = value

    def render(self, frame: Any) -> str:
        """The HTML for ``frame``: the counts line, then the table of its last rows."""
        status = run_column(frame, "status")
        statuses = frame[status].tolist() if status in frame.columns else []
        failed = sum(s in _FAILED for s in statuses)
        done = f"{len(frame)} of {self.total} done" if self.total is not None else f"{len(frame)} done"
        counts = done + (f", {failed} failed" if failed else "")
        shown = frame.tail(self.max_rows) if len(frame) > self.max_rows else frame
        table = _blank_gaps(shown).to_html(max_cols=20, na_rep="")
        # pandas writes one "<tr>" per body row, in order: tint those that failed.
        tinted = [s in _FAILED for s in statuses[len(statuses) - len(shown) :]]
        head, tbody, body = table.partition("<tbody>")
        first, *rows = body.split("<tr>")
        body = first + "".join(
            ("<tr" + _FAILED_ROW + ">" if position < len(tinted) and tinted[position] else "<tr>") + row
            for position, row in enumerate(rows)
        )
        return f"<div>{html.escape(counts)}</div>{head}{tbody}{body}"

    def close(self, summary: str) -> None:
        """Replace the table with a one-line ``summary`` (the cell's own output shows the result)."""
        if self._widget is not None:
            self._widget.value = f"<b>{html.escape(summary)}</b>"


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
