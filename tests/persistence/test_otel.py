"""OpenTelemetryTracker: runs and steps as spans, sub-applications as children of their step."""

import pytest

from nbflow import ApplicationBuilder, LocalTracker, MapStates, action, expr
from nbflow.persistence.otel import OpenTelemetryTracker

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402


@action(reads=["n"], writes=["n"])
def tick(state):
    return state.update(n=state["n"] + 1)


@action(reads=["x"], writes=["y"])
def square(state):
    if state["x"] == 2:
        raise ValueError("two")
    return state.update(y=state["x"] ** 2)


class Squares(MapStates):
    reads, writes = ["k"], ["ys"]

    def action(self):
        return square

    def states(self, state):
        for x in range(state["k"]):
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(ys=sorted(s.get("y", -1) for s in states))


@pytest.fixture
def exporter():
    """A tracer provider that keeps finished spans in memory."""
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    exporter.provider = provider
    return exporter


def test_otel_tracker_emits_a_run_span_with_one_child_per_step(exporter):
    """Three steps of a loop become three step spans under one run span."""
    app = (
        ApplicationBuilder()
        .with_actions(tick=tick)
        .with_transitions(("tick", "tick", expr("n < 3")))
        .with_state(n=0)
        .with_entrypoint("tick")
        .with_tracker(OpenTelemetryTracker(exporter.provider))
        .with_identifiers(app_id="loop")
        .build()
    )
    app.run()
    spans = exporter.get_finished_spans()
    run = next(s for s in spans if s.name == "run loop")
    steps = [s for s in spans if s.name == "tick"]
    assert len(steps) == 3
    assert all(s.parent.span_id == run.context.span_id for s in steps)
    assert [s.attributes["nbflow.sequence_id"] for s in steps] == [0, 1, 2]
    assert steps[0].attributes["nbflow.written"] == ("n",)


def test_otel_tracker_nests_sub_applications_under_their_step_and_marks_failures(exporter, tmp_path):
    """Each task's run is a child of the map step; a failing task's step span carries the error."""
    app = (
        ApplicationBuilder()
        .with_actions(squares=Squares(on_error="record"))
        .with_state(k=3)
        .with_entrypoint("squares")
        .with_tracker(OpenTelemetryTracker(exporter.provider), LocalTracker("both", storage_dir=tmp_path))
        .with_identifiers(app_id="parent")
        .build()
    )
    assert app.run()[2]["ys"] == [-1, 0, 1]
    spans = exporter.get_finished_spans()
    map_step = next(s for s in spans if s.name == "squares")
    task_runs = [s for s in spans if s.name.startswith("run ") and s.name != "run parent"]
    assert len(task_runs) == 3 and all(s.parent.span_id == map_step.context.span_id for s in task_runs)
    failed = [s for s in spans if s.name == "square" and not s.status.is_ok]
    assert len(failed) == 1 and "ValueError: two" in failed[0].status.description
    assert len(LocalTracker("both", storage_dir=tmp_path).app_ids("parent")) == 3
