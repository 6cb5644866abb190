"""`report`: metrics a point records while it runs, kept with its result.

Inside a point (a swept function, or an action a parallel step runs), ``nbflow.report(step=3,
loss=0.41)`` records metrics at a step. The reports of a task's last attempt ride with its final
state under `REPORTS`, so they come back from worker processes, Dask and Ray with the result,
are cached with it, and a point that fails keeps what it reported before it failed. A retry
starts its reports afresh.

A step that listens (a sweep, for its live view; a search, to prune) also hears each report the moment it is made,
as ``(task index, step, metrics, attempt)``: the attempt number lets the listener start a
retry's curve afresh and ignore an abandoned earlier attempt that goes on reporting. Tasks in the
driver's process call its listener directly; tasks in worker processes send reports through the
step's `nbflow.parallel.channel.Channel`, a few times a second. A worker that cannot reach the
channel (another machine of a cluster) keeps them for the task's result.

A listener returns whether the point should stop. If so, ``report`` raises `Pruned` in the
point, which ends with what it reported as a result (not a failure) marked `PRUNED`. A step that
prunes has worker processes ask through the channel at each report, and wait for the answer.

Where the point runs is told by a context variable set for each attempt (see `PerAttempt`).
"""

from __future__ import annotations

import contextvars
import numbers
import os
import secrets
import warnings
from collections.abc import Callable
from typing import Any

from nbflow.errors import Pruned
from nbflow.parallel.attempts import PerAttempt
from nbflow.parallel.channel import sending
from nbflow.parallel.recording import append_report, recording_folder

__all__ = ["report", "REPORTS", "PRUNED", "Reports", "last_values", "listen", "unlisten"]

# The state key a task's reports travel under: (step, {metric: value}) pairs, in order.
REPORTS = "_nbflow_reports"
# The state key of a point the search stopped early: the step it stopped at (see `Pruned`).
PRUNED = "_nbflow_pruned"

_warned_outside = False
# In a swept notebook's kernel: its reports so far, by recording folder (for their steps).
_IN_NOTEBOOK: dict[str, Reports] = {}

# The listeners of the steps running in this process, by key: (pid, listener). The pid keeps a
# forked child from calling its parent's listener, which would update nothing the parent sees.
_LISTENERS: dict[str, tuple[int, Callable[[tuple], None]]] = {}


def listen(listener: Callable[[tuple], None]) -> str:
    """Have ``listener`` hear every report of the tasks given the key returned, as it is made."""
    key = secrets.token_hex(8)
    _LISTENERS[key] = (os.getpid(), listener)
    return key


def unlisten(key: str) -> None:
    _LISTENERS.pop(key, None)


def _live(key: str | None) -> Callable[[tuple], None] | None:
    """Where the reports of a task given ``key`` go as they are made: its listener, or the channel."""
    if key is None:
        return None
    found = _LISTENERS.get(key)
    if found is not None and found[0] == os.getpid():
        return found[1]
    return sending.get()


class Reports(PerAttempt):
    """What one attempt of a task reported, in order."""

    __slots__ = ("attempt", "index", "items", "listen", "live")
    current = contextvars.ContextVar("nbflow_reports", default=None)

    def __init__(self, index: int = 0, listen: str | None = None, attempt: int = 1) -> None:
        super().__init__()
        self.index = index
        self.attempt = attempt
        self.items: list[tuple[int, dict[str, Any]]] = []
        self.listen = listen
        self.live: Callable[[tuple], None] | None = None

    def add(self, step: Any, metrics: dict[str, Any]) -> None:
        if step is None:
            step = self.items[-1][0] + 1 if self.items else 0
        elif isinstance(step, bool) or not isinstance(step, numbers.Integral):
            msg = f"report(step=...) takes an int (the epoch, iteration or batch), not {type(step).__name__} {step!r}. Leave it out to count the reports of this point: 0, 1, 2..."
            raise TypeError(msg)
        plain = {}
        for name, value in metrics.items():
            if type(value) is float or type(value) is int:
                plain[name] = value  # the usual case, without numbers' ABC checks
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                msg = f"report({name}=...) takes a number, not {type(value).__name__} {value!r}: metrics are plotted and compared. Return other values from the point instead; they become columns of its row."
                raise TypeError(msg)
            plain[name] = _plain(value)
        item = (int(step), plain)
        self.items.append(item)
        if self.listen is not None:
            # Found at the first report, in the point's own thread: most points never report.
            self.live, self.listen = _live(self.listen), None
        # A listener that prunes answers whether this point should stop here.
        if self.live is not None and self.live((self.index, *item, self.attempt)):
            raise Pruned(item[0])


def last_values(items: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """The last value reported of each metric, from a task's reports."""
    values: dict[str, Any] = {}
    for _, metrics in items:
        values.update(metrics)
    return values


def _plain(value: numbers.Real) -> int | float:
    # numpy scalars and the like as Python numbers: they pickle, store and compare plainly.
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def report(step: int | None = None, **metrics: float) -> None:
    """Record metrics of the running point at ``step`` (by default 0, 1, 2... per point).

    The last value of each metric becomes a column of the point's row, unless what the point
    returns has that name (the return value wins); every report is in ``df.nbflow.curves()``.
    Outside a sweep or parallel step it does nothing, and warns once.

    Raises:
        TypeError: ``step`` is not an int, or a metric is not a number.
        ValueError: no metric was given.

    Example:
        >>> import nbflow
        >>> def train(lr):
        ...     for epoch in range(3):
        ...         nbflow.report(step=epoch, loss=1 / (1 + lr * epoch))
        ...     return {"done": True}
        >>> df = nbflow.sweep(train, {"lr": [0.5, 1.0]}, progress=False)
        >>> df["loss"].round(3).tolist()
        [0.5, 0.333]
        >>> df.nbflow.curves().shape
        (6, 4)
    """
    global _warned_outside
    if not metrics:
        msg = "report() needs at least one metric, e.g. nbflow.report(step=epoch, loss=loss)."
        raise ValueError(msg)
    sink = Reports.current.get()
    if sink is None:
        folder = recording_folder()
        if folder is not None:
            # A notebook that nbflow.sweep_notebook runs, on a kernel of its own.
            kept = _IN_NOTEBOOK.setdefault(str(folder), Reports())
            kept.add(step, metrics)
            append_report(folder, *kept.items[-1])
            return
        if not _warned_outside:
            _warned_outside = True
            warnings.warn(
                "nbflow.report() was called outside a sweep or parallel step, so nothing records it. Call it inside the function you sweep.",
                stacklevel=2,
            )
        return
    sink.add(step, metrics)
