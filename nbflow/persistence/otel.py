"""`OpenTelemetryTracker`: every run and step as an OpenTelemetry span (``pip install 'nbflow[otel]'``).

Any OpenTelemetry backend (Jaeger, Honeycomb, Junjo Server ...) then shows an
application as a tree: one span per ``run``, a child span per step, and the
runs of sub-applications started by a parallel step as children of that step.
Sub-applications in other processes start root spans of their own (the step
span does not travel with the task).
"""

from __future__ import annotations

import threading
from typing import Any

from nbflow.core.hooks import LifecycleHook
from nbflow.errors import MissingDependencyError

__all__ = ["OpenTelemetryTracker"]


def _trace() -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        msg = "OpenTelemetryTracker needs the OpenTelemetry API and SDK. Install them with: pip install 'nbflow[otel]'"
        raise MissingDependencyError(msg) from None
    return trace


class OpenTelemetryTracker(LifecycleHook):
    """Emits runs and steps as OpenTelemetry spans.

    Args:
        tracer_provider: the provider to get the tracer from; the global one by default.

    Attach it like any tracker: ``ApplicationBuilder().with_tracker(OpenTelemetryTracker())``,
    or beside a `LocalTracker` with ``with_hooks``.
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        self._provider = tracer_provider
        self._setup()

    def _setup(self) -> None:
        trace = _trace()
        self._tracer = trace.get_tracer("nbflow", tracer_provider=self._provider)
        self._runs: dict[str, list[Any]] = {}
        self._steps: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        # Spans and providers stay in this process; a worker uses its global provider.
        return {"_provider": None}

    def __setstate__(self, values: dict) -> None:
        self.__dict__.update(values)
        self._setup()

    def pre_run(self, *, app: Any, **kwargs: Any) -> None:
        trace = _trace()
        parent = app.parent
        with self._lock:
            parent_span = self._steps.get((parent.app_id, parent.sequence_id)) if parent else None
        context = trace.set_span_in_context(parent_span) if parent_span is not None else None
        span = self._tracer.start_span(
            f"run {app.app_id}",
            context=context,
            attributes={"nbflow.app_id": app.app_id, "nbflow.partition_key": app.partition_key or ""},
        )
        with self._lock:
            self._runs.setdefault(app.app_id, []).append(span)

    def pre_step(self, *, app: Any, action: Any, sequence_id: int, **kwargs: Any) -> None:
        trace = _trace()
        with self._lock:
            runs = self._runs.get(app.app_id)
            run_span = runs[-1] if runs else None
        context = trace.set_span_in_context(run_span) if run_span is not None else None
        span = self._tracer.start_span(
            action.name,
            context=context,
            attributes={
                "nbflow.app_id": app.app_id,
                "nbflow.sequence_id": sequence_id,
                "nbflow.action": action.name,
            },
        )
        with self._lock:
            self._steps[(app.app_id, sequence_id)] = span

    def post_step(
        self,
        *,
        app: Any,
        sequence_id: int,
        exception: BaseException | None,
        written: dict,
        deleted: list,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            span = self._steps.pop((app.app_id, sequence_id), None)
        if span is None:
            return
        span.set_attribute("nbflow.written", sorted(written))
        if deleted:
            span.set_attribute("nbflow.deleted", sorted(deleted))
        if exception is not None:
            span.record_exception(exception)
            span.set_status(
                _trace().Status(_trace().StatusCode.ERROR, f"{type(exception).__name__}: {exception}")
            )
        span.end()

    def post_run(self, *, app: Any, exception: BaseException | None, **kwargs: Any) -> None:
        with self._lock:
            runs = self._runs.get(app.app_id)
            span = runs.pop() if runs else None
            if runs == []:
                del self._runs[app.app_id]
        if span is None:
            return
        if exception is not None:
            span.set_status(
                _trace().Status(_trace().StatusCode.ERROR, f"{type(exception).__name__}: {exception}")
            )
        span.end()
