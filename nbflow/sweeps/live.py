"""What a running sweep shows: a tqdm progress bar and, in Jupyter, a table that updates in place.

Jupyter is detected the way ``tqdm.autonotebook`` does it, from ``ipykernel``
being loaded, so nothing here imports IPython outside a notebook.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["in_notebook", "make_progress", "LiveTable"]


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (as opposed to a terminal or a script)."""
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def make_progress(progress: Any, total: int, desc: str) -> Any:
    """A progress bar for ``total`` points, or None.

    Args:
        progress: True for ``tqdm.auto.tqdm`` (a widget in Jupyter, text in a
            terminal), False/None for none, or a tqdm-like class or factory taking
            ``total``, ``desc`` and ``unit`` (tests pass a recorder).
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="pt", leave=True)
    if callable(progress):
        return progress(total=total, desc=desc, unit="pt")
    msg = f"progress= takes True, False, or a tqdm-like class; got {type(progress).__name__}."
    raise TypeError(msg)


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
