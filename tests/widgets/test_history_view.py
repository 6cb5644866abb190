"""HistoryView over a real LocalTracker: the application dropdown, the step slider, inputs and state diffs."""

from __future__ import annotations

import pytest

from nbflow import ApplicationBuilder, LocalTracker, MapStates, NotRecordedError, action
from nbflow.widgets import HistoryView


@action(reads=["x"], writes=["y"])
def square(state):
    return state.update(y=state["x"] ** 2)


class Inner(MapStates):
    reads, writes = ["x"], ["total"]

    def action(self):
        return square

    def states(self, state):
        for k in range(2):
            yield state.update(x=state["x"] + k)

    def reduce(self, state, states):
        return state.update(total=sum(s["y"] for s in states))


class Outer(MapStates):
    """A map whose sub-applications map again: three levels of applications."""

    reads, writes = ["xs"], ["totals"]

    def action(self):
        return Inner()

    def states(self, state):
        for x in state["xs"]:
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(totals=sorted(s["total"] for s in states))


@action(reads=[], writes=["n", "note"])
def start(state):
    return state.update(n=1, note="hello")


@action(reads=["n"], writes=["n"])
def add(state, k):
    return state.update(n=state["n"] + k)


@action(reads=["note"], writes=["note"])
def forget(state):
    return state.wipe(delete=["note"])


@action(reads=["n"], writes=["n"])
def boom(state):
    raise ValueError("no more")


@pytest.fixture
def tracked(tmp_path):
    """A tracker holding app 'exp': start, add(k=5), a nested map, a delete, and a failed step."""
    tracker = LocalTracker("history", storage_dir=tmp_path)
    app = (
        ApplicationBuilder()
        .with_actions(start=start, add=add, outer=Outer(), forget=forget, boom=boom)
        .with_transitions(("start", "add"), ("add", "outer"), ("outer", "forget"), ("forget", "boom"))
        .with_state(xs=[1, 2])
        .with_entrypoint("start")
        .with_identifiers(app_id="exp")
        .with_tracker(tracker)
        # Sequential, so sub-applications are created, and listed, in task order.
        .with_executor("sequential")
        .build()
    )
    app.step()
    app.step(inputs={"k": 5})
    app.step()
    app.step()
    with pytest.raises(ValueError):
        app.step()
    return tracker, app


def test_history_view_dropdown_lists_app_and_sub_applications_recursively(tracked):
    """The dropdown offers the app, then each child followed by its own children, indented by depth."""
    tracker, _ = tracked
    view = HistoryView("exp", tracker=tracker)
    children = tracker.app_ids("exp")
    assert len(children) == 2
    expected = ["exp"]
    for child in children:
        grandchildren = tracker.app_ids(child)
        assert len(grandchildren) == 2
        expected += [child, *grandchildren]
    assert view.app_ids == expected
    labels = [label for label, _ in view.app_dropdown.options]
    # Sub-applications are named by their first action and what they started from that differs
    # between siblings (xs, the parent's, is the same in both).
    assert labels == [
        "exp",
        "\u00a0\u00a0↳ inner(x=1)",
        "\u00a0\u00a0\u00a0\u00a0↳ square(x=1)",
        "\u00a0\u00a0\u00a0\u00a0↳ square(x=2)",
        "\u00a0\u00a0↳ inner(x=2)",
        "\u00a0\u00a0\u00a0\u00a0↳ square(x=2)",
        "\u00a0\u00a0\u00a0\u00a0↳ square(x=3)",
    ]
    assert view.app_dropdown.value == "exp"


def test_history_view_slider_spans_the_recorded_steps(tracked):
    """The slider runs from the first to the last recorded sequence id and starts at the first."""
    tracker, _ = tracked
    view = HistoryView("exp", tracker=tracker)
    slider = view.step_slider
    assert (slider.min, slider.max, slider.value) == (0, 4, 0)
    assert not slider.disabled
    assert repr(view) == "HistoryView('exp': 7 applications, 5 steps)"


def test_history_view_shows_action_timing_and_new_keys(tracked):
    """The first step shows its action and timing; keys it wrote are new, so 'before' is absent."""
    tracker, _ = tracked
    view = HistoryView("exp", tracker=tracker)
    assert "<b>start</b>" in view.summary.value
    assert "sequence id 0 (1 of 5)" in view.summary.value
    assert " ms</td>" in view.summary.value and "Z</td>" in view.summary.value
    assert "<i>none</i>" in view.inputs.value
    diff = view.diff.value
    assert "<td style='text-align:left'>note</td><td style='text-align:left'><i>(absent)</i></td>" in diff
    assert "<code>&#x27;hello&#x27;</code>" in diff


def test_history_view_diff_has_before_and_after_and_inputs(tracked):
    """Moving the slider to the step that ran add(k=5) shows the input and n going from 1 to 6."""
    tracker, _ = tracked
    view = HistoryView("exp", tracker=tracker)
    view.step_slider.value = 1
    assert view.step["action"] == "add"
    assert (
        "<td style='text-align:left'>k</td><td style='text-align:left'><code>5</code></td>"
        in view.inputs.value
    )
    assert (
        "<td style='text-align:left'>n</td><td style='text-align:left'><code>1</code></td>"
        "<td style='text-align:left'><code>6</code></td>"
    ) in view.diff.value


def test_history_view_diff_of_a_parallel_step_and_a_delete(tracked):
    """A map step shows what its reduce wrote; a step that deleted a key shows its old value and '(deleted)'."""
    tracker, _ = tracked
    view = HistoryView("exp", tracker=tracker)
    view.step_slider.value = 2
    assert "<code>[5, 13]</code>" in view.diff.value
    view.step_slider.value = 3
    assert (
        "<code>&#x27;hello&#x27;</code></td><td style='text-align:left'><i>(deleted)</i>" in view.diff.value
    )


def test_history_view_failed_step_shows_the_exception(tracked):
    """A step that raised shows the exception and says the state did not change."""
    tracker, _ = tracked
    view = HistoryView("exp", tracker=tracker)
    view.step_slider.value = 4
    assert "ValueError: no more" in view.summary.value
    assert "the state stayed as it was" in view.diff.value
    # What it started from (n after add(k=5)), and the traceback down to the raise.
    assert (
        "<td style='text-align:left'>n</td><td style='text-align:left'><code>6</code></td>" in view.diff.value
    )
    assert "raise ValueError(&quot;no more&quot;)" in view.diff.value


def test_history_view_sub_application_names_its_parent_step(tracked):
    """Choosing a grandchild loads its one step, its diff, and the parent step that started it."""
    tracker, _ = tracked
    view = HistoryView("exp", tracker=tracker)
    child = tracker.app_ids("exp")[1]
    grandchild = tracker.app_ids(child)[0]
    view.app_dropdown.value = grandchild
    assert (view.step_slider.min, view.step_slider.max, view.step_slider.value) == (0, 0, 0)
    assert "<b>square</b>" in view.summary.value
    assert f"{child}, step 0" in view.summary.value
    # Grandchild 0 of the child for x=2 squares 2.
    assert (
        "<td style='text-align:left'>y</td><td style='text-align:left'><i>(absent)</i></td>"
        in view.diff.value
    )
    assert "<code>4</code>" in view.diff.value
    view.app_dropdown.value = "exp"
    assert (view.step_slider.min, view.step_slider.max) == (0, 4)


def test_history_view_without_app_id_lists_every_top_level_app(tracked):
    """With no app_id, the dropdown offers every top-level application the tracker holds, with its children."""
    tracker, _ = tracked
    other = (
        ApplicationBuilder()
        .with_actions(start=start)
        .with_entrypoint("start")
        .with_identifiers(app_id="second")
        .with_tracker(tracker)
        .build()
    )
    other.step()
    view = HistoryView(tracker=tracker)
    assert view.app_ids[0] == "exp"
    assert view.app_ids[-1] == "second"
    assert len(view.app_ids) == 8


def test_history_view_refresh_picks_up_new_steps(tmp_path):
    """Refresh reads the tracker again: steps recorded after the view was made appear on the slider."""
    tracker = LocalTracker("refresh", storage_dir=tmp_path)
    app = (
        ApplicationBuilder()
        .with_actions(add=add)
        .with_transitions(("add", "add"))
        .with_state(n=0)
        .with_entrypoint("add")
        .with_identifiers(app_id="loop")
        .with_tracker(tracker)
        .build()
    )
    app.step(inputs={"k": 1})
    view = HistoryView("loop", tracker=tracker)
    assert view.step_slider.max == 0
    app.step(inputs={"k": 2})
    view.refresh_button.click()
    assert view.step_slider.max == 1
    view.step_slider.value = 1
    assert "<code>1</code></td><td style='text-align:left'><code>3</code>" in view.diff.value


def test_history_view_unknown_app_names_the_known_ones(tracked):
    """An app_id the tracker never saw raises NotRecordedError listing the applications it has."""
    tracker, _ = tracked
    with pytest.raises(NotRecordedError) as info:
        HistoryView("exq", tracker=tracker)
    assert "'exq'" in str(info.value) and "'exp'" in str(info.value)


def test_history_view_needs_a_local_tracker():
    """A tracker that is not a LocalTracker is refused, naming the fix."""
    with pytest.raises(TypeError) as info:
        HistoryView("exp", tracker="project.db")
    assert "LocalTracker('project')" in str(info.value)


def test_history_view_repr_is_stable_text(tracked):
    """The text repr (what nbval compares) holds ids and counts only; the mimebundle carries the widget."""
    tracker, _ = tracked
    view = HistoryView("exp", tracker=tracker)
    bundle = view._repr_mimebundle_()
    assert bundle["text/plain"] == "HistoryView('exp': 7 applications, 5 steps)"
    assert "application/vnd.jupyter.widget-view+json" in bundle


@action(reads=["lr", "depth"], writes=["loss"])
def fit(state):
    if state["depth"] == 3:
        raise FloatingPointError(f"diverged at lr={state['lr']}")
    return state.update(loss=state["lr"] * state["depth"])


class Grid(MapStates):
    reads, writes = [], ["losses"]
    on_error = "record"

    def action(self):
        return fit

    def states(self, state):
        for lr in (0.01, 0.1):
            for depth in (1, 3):
                yield state.update(lr=lr, depth=depth)

    def reduce(self, state, states):
        return state.update(losses=[s.get("loss") for s in states])


def test_history_view_names_tasks_by_their_parameters_and_filters_to_the_failed_ones(tmp_path):
    """A map's tasks read fit(lr=0.01, depth=3) ✗ failed; "failed only" lists just those, and one shows its inputs, state and traceback."""
    tracker = LocalTracker("failures", storage_dir=tmp_path)
    app = (
        ApplicationBuilder()
        .with_actions(grid=Grid())
        .with_transitions()
        .with_entrypoint("grid")
        .with_identifiers(app_id="search")
        .with_tracker(tracker)
        .with_executor("sequential")
        .build()
    )
    app.step()
    view = HistoryView("search", tracker=tracker)
    labels = [label.strip("\u00a0↳ ") for label, _ in view.app_dropdown.options]
    assert labels == [
        "search",
        "fit(lr=0.01, depth=1)",
        "fit(lr=0.01, depth=3) ✗ failed",
        "fit(lr=0.1, depth=1)",
        "fit(lr=0.1, depth=3) ✗ failed",
    ]
    view.failed_only.value = True
    failed = [label.strip("\u00a0↳ ") for label, _ in view.app_dropdown.options]
    assert failed == ["search", "fit(lr=0.01, depth=3) ✗ failed", "fit(lr=0.1, depth=3) ✗ failed"]
    view.app_dropdown.value = view.app_ids[2]
    assert "FloatingPointError: diverged at lr=0.1" in view.summary.value
    assert "<code>0.1</code>" in view.diff.value  # the state before: lr=0.1, depth=3
    assert "Traceback (most recent call last)" in view.diff.value
    assert "in fit" in view.diff.value
