"""`WidgetProgress`: a tqdm-like progress bar drawn on an ``ipywidgets.IntProgress``.

It is what a widget passes as ``Sweep(progress=...)``: `Sweep` injects its
progress reporting through that class, so the sweep itself knows nothing of
widgets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ipywidgets

__all__ = ["WidgetProgress"]


class WidgetProgress:
    """A tqdm-like bar drawn on an ``ipywidgets.IntProgress``: what ``Sweep(progress=...)`` needs.

    `Sweep` calls ``progress(total=, desc=, unit=)`` once, then ``update(1)`` and
    ``set_postfix(...)`` for each point, and ``close()`` at the end; bind the bar
    first with ``functools.partial(WidgetProgress, bar)``.

    Args:
        bar: the IntProgress to move.
        total: how many points the sweep has.
        desc: the sweep's name.
        unit: what one step counts (unused; tqdm takes it).
        on_update: called with this object when it starts, after each update and on close.
        min_interval_s: move the bar at most this often (the last point always shows);
            every move is a message to the browser.

    Example:
        >>> import functools, ipywidgets
        >>> from nbflow import Sweep
        >>> bar = ipywidgets.IntProgress()
        >>> _ = Sweep(lambda x: x, {"x": [1, 2, 3]}, progress=functools.partial(WidgetProgress, bar)).run()
        >>> bar.value, bar.max
        (3, 3)
    """

    def __init__(
        self,
        bar: ipywidgets.IntProgress,
        *,
        total: int,
        desc: str = "",
        unit: str = "it",
        on_update: Callable[[WidgetProgress], None] | None = None,
        min_interval_s: float = 0.1,
    ) -> None:
        self.bar = bar
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self.closed = False
        self.min_interval_s = min_interval_s
        self._on_update = on_update
        self._moved = 0.0
        bar.value = 0
        bar.max = max(total, 1)
        bar.bar_style = "info"
        self._notify()

    def update(self, n: int = 1) -> bool:
        """Count ``n`` more points done; True when the bar moved (as tqdm's update says it redrew)."""
        self.n += n
        now = time.monotonic()
        moved = self.n >= self.total or now - self._moved >= self.min_interval_s
        if moved:
            self._moved = now
            self.bar.value = min(self.n, self.bar.max)
        self._notify()
        return moved

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        """Keep the counts the sweep reports (ok, error, cached)."""
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def close(self) -> None:
        """Show the final count; green when every point was done, yellow when some were not."""
        if self.closed:
            return
        self.closed = True
        self.bar.value = min(self.n, self.bar.max)
        self.bar.bar_style = "success" if self.n >= self.total else "warning"
        self._notify()

    def _notify(self) -> None:
        if self._on_update is not None:
            self._on_update(self)
