"""What a point prints, kept with its row instead of flooding the cell.

While an attempt of a task runs with capture on, what it writes to ``sys.stdout`` and
``sys.stderr`` and the warnings it raises go to that attempt's `PointOutput`, and ride with its
final state under `OUTPUT` (so they come back from worker processes, and are cached with the
result). Logging reaches it through the handlers that write to ``sys.stdout`` or ``sys.stderr``:
Python's last-resort handler, a ``StreamHandler()`` made later, and one made before (by
``logging.basicConfig()`` at the top of a notebook, say), which is pointed at the router too.

Python's streams are process-wide, so they are replaced once by routers that send each write to
the output of the attempt running in the writer's context, and everything else on to the stream
they replaced. Writes that bypass ``sys.stdout`` (a C extension writing to file descriptor 1 or 2,
a subprocess) are not captured.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import warnings
from typing import Any, TextIO

from nbflow.parallel.attempts import PerAttempt

__all__ = ["OUTPUT", "PointOutput"]

# The state key an attempt's output travels under.
OUTPUT = "_nbflow_output"

_installing = threading.Lock()


class _Router:
    """Stands in for ``sys.stdout`` or ``sys.stderr``: a point's writes to its output, others on."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        sink = PointOutput.current.get()
        if sink is None:
            return self._stream.write(text)
        if not isinstance(text, str):
            # What the stream itself would say, rather than a failure when the output is joined.
            msg = f"write() argument must be str, not {type(text).__name__}"
            raise TypeError(msg)
        sink.parts.append(text)
        return len(text)

    def flush(self) -> None:
        if PointOutput.current.get() is None:
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _install() -> None:
    """Routers in place of the streams (again, if something such as pytest replaced them since)."""
    if (
        isinstance(sys.stdout, _Router)
        and isinstance(sys.stderr, _Router)
        and getattr(warnings.showwarning, "_nbflow", False)
    ):
        return  # every attempt asks: the common answer must cost no lock
    with _installing:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if not isinstance(stream, _Router):
                router = _Router(stream)
                setattr(sys, name, router)
                _reroute_handlers(stream, router)
        if not getattr(warnings.showwarning, "_nbflow", False):
            shown = warnings.showwarning

            def showwarning(
                message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
            ) -> None:
                sink = PointOutput.current.get()
                if sink is None or file is not None:
                    shown(message, category, filename, lineno, file, line)
                else:
                    sink.parts.append(warnings.formatwarning(message, category, filename, lineno, line))

            showwarning._nbflow = True  # type: ignore[attr-defined]
            warnings.showwarning = showwarning


def _reroute_handlers(stream: TextIO, router: _Router) -> None:
    """Logging handlers made earlier hold ``stream`` itself: have them write through ``router``."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            # Exactly StreamHandlers on this stream: a FileHandler's stream is its file.
            if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                handler.setStream(router)


class PointOutput(PerAttempt):
    """What one attempt of a task printed and warned, in order; a no-op when capture is off."""

    __slots__ = ("enabled", "parts")
    current = contextvars.ContextVar("nbflow_output", default=None)

    def __init__(self, enabled: bool) -> None:
        super().__init__()
        self.enabled = enabled
        self.parts: list[str] = []

    def __enter__(self) -> PointOutput:
        if self.enabled:
            _install()
            super().__enter__()
        return self

    def text(self) -> str:
        return "".join(self.parts)
