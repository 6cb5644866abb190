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


class LiveTable:
    """A table in a notebook output that redraws as the sweep grows, at most every ``interval_s``.

    It is an ``ipywidgets.HTML`` whose value is replaced, rather than a display that is
    updated: widget state survives being saved in a notebook and does not churn its outputs.
    """

    def __init__(self, frame: Callable[[], Any], interval_s: float = 0.5, max_rows: int = 20) -> None:
        self._frame = frame
        self.interval_s = interval_s
        self.max_rows = max_rows
        self._widget: Any = None
        self._last = 0.0

    def refresh(self, force: bool = False) -> None:
        """Redraw the table if ``interval_s`` has passed since the last redraw (always when ``force``)."""
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        frame = self._frame()
        shown = frame.tail(self.max_rows) if len(frame) > self.max_rows else frame
        html = f"<div>{len(frame)} rows so far</div>{shown.to_html(max_cols=20)}"
        if self._widget is None:
            import ipywidgets
            from IPython.display import display

            self._widget = ipywidgets.HTML()
            display(self._widget)
        self._widget.value = html

    def close(self, summary: str) -> None:
        """Replace the table with a one-line ``summary`` (the cell's own output shows the result)."""
        if self._widget is not None:
            self._widget.value = f"<b>{html.escape(summary)}</b>"
