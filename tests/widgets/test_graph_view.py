"""GraphView: the live SVG of an application in a widget, its throttled redraws, and run(display=True)."""

import asyncio
import itertools
import time

import IPython.display
import ipywidgets
import pytest

from nbflow import ApplicationBuilder, Sweep, action, grid
from nbflow.viz import STATUS_COLOURS, StatusTracker
from nbflow.widgets import GraphView
from nbflow.widgets import graph_view as graph_view_module

DONE = f'fill="{STATUS_COLOURS["done"]}"'
RUNNING = f'fill="{STATUS_COLOURS["running"]}"'


@action(reads=["n"], writes=["n"])
def tick(state):
    return state.update(n=state["n"] + 1)


@action(reads=["n"], writes=["done"])
def stop(state):
    return state.update(done=True)


def _app(**actions):
    names = list(actions) or ["tick", "stop"]
    actions = actions or {"tick": tick, "stop": stop}
    return (
        ApplicationBuilder()
        .with_actions(**actions)
        .with_transitions(*itertools.pairwise(names))
        .with_state(n=0)
        .with_entrypoint(names[0])
        .build()
    )


class CountingView(GraphView):
    """A GraphView that counts its redraws."""

    def redraw(self):
        self.redraws = getattr(self, "redraws", 0) + 1
        super().redraw()


def test_graph_view_is_an_html_widget_holding_the_svg():
    """The view is an ipywidgets.HTML whose value is dot's SVG (no XML prologue), every action pending."""
    view = GraphView(_app())
    assert isinstance(view, ipywidgets.HTML)
    assert view.value.startswith("<svg") and ">tick</text>" in view.value and ">stop</text>" in view.value
    assert DONE not in view.value and 'fill="white"' in view.value
    view.detach()


def test_graph_view_value_updates_after_a_run():
    """After a run the value shows each action done and a sweep's final count."""
    sweep = Sweep(lambda lr: lr, grid(lr=[1, 2, 3]), executor="threads", progress=False, name="train")
    app = _app(tick=tick, train=sweep)
    view = GraphView(app)
    before = view.value
    app.run(halt_after=["train"])
    assert view.value != before
    assert view.value.count(DONE) == 2 and ">train 3/3</text>" in view.value
    view.detach()


def test_graph_view_redraws_once_then_waits_for_the_interval_and_draws_the_end():
    """Within one interval only the first event redraws; the run's end always redraws (no timer left)."""
    app = _app(a=tick, b=tick, c=tick, d=stop)
    view = CountingView(app, interval_s=3600)
    app.run(halt_after=["d"])
    # Built, the first event of the run, and the end of the run.
    assert view.redraws == 3 and view._timer is None
    assert view.value.count(DONE) == 4
    view.detach()
    assert view.redraws == 3


def test_graph_view_draws_a_long_step_running_while_it_runs():
    """An event throttled away is drawn by a trailing redraw, so a long step shows as running before it ends."""
    seen_running = []

    @action(reads=["n"], writes=["n"])
    def slow(state):
        deadline = time.monotonic() + 30
        while RUNNING not in view.value and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_running.append(RUNNING in view.value and ">slow</text>" in view.value)
        return state

    app = _app(tick=tick, slow=slow)
    view = GraphView(app, interval_s=0.05)
    app.run(halt_after=["slow"])
    assert seen_running == [True]
    view.detach()


def test_graph_view_follows_many_threads_and_ends_with_the_full_count():
    """Tasks finishing on many threads at once all count, and the last drawing has every one."""
    sweep = Sweep(lambda lr: lr, grid(lr=list(range(100))), executor="threads", progress=False, name="train")
    app = _app(train=sweep)
    view = GraphView(app, interval_s=0.01)
    app.run()
    assert ">train 100/100</text>" in view.value
    view.detach()


def test_graph_view_detach_stops_following_the_application():
    """After detach the application's hooks and tracker are as before, and runs no longer redraw."""
    app = _app()
    hooks, tracker = list(app.hooks), app.tracker
    view = GraphView(app)
    assert app.hooks[-1] is view.tracker and app.tracker is view.tracker
    view.detach()
    before = view.value
    app.run(halt_after=["stop"])
    assert app.hooks == hooks and app.tracker is tracker and view.value == before


def test_graph_view_joins_an_existing_tracker():
    """An application built with a tracker keeps it; the view's tracker is added beside it."""
    existing = StatusTracker()
    app = ApplicationBuilder().with_actions(tick=tick).with_state(n=0).with_entrypoint("tick")
    app = app.with_tracker(existing).build()
    view = GraphView(app)
    app.run(halt_after=["tick"])
    assert existing.snapshot(app.app_id)["tick"].status == "done" and DONE in view.value
    view.detach()
    assert app.tracker is existing


def test_graph_view_showing_shows_the_view_for_the_block_then_detaches():
    """showing() hands the view to show(), and detaches it when the block ends."""
    app, shown = _app(), []
    with GraphView.showing(app, show=shown.append) as view:
        app.run(halt_after=["stop"])
    assert shown == [view] and view.value.count(DONE) == 2
    assert view.tracker not in app.hooks


def test_application_run_display_outside_jupyter_runs_as_usual():
    """Outside Jupyter, run(display=True) shows nothing and attaches nothing."""
    app = _app()
    hooks = list(app.hooks)
    assert app.run(halt_after=["stop"], display=True)[2]["done"] is True
    assert app.hooks == hooks and app.tracker is None


@pytest.fixture
def jupyter(monkeypatch):
    """Pretend to be in Jupyter: in_notebook() is true and IPython's display() records what it shows."""
    shown = []
    monkeypatch.setattr(graph_view_module, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", shown.append)
    return shown


@pytest.mark.parametrize("api", ["run", "iterate", "arun"])
def test_application_display_in_jupyter_shows_a_live_graph_view(jupyter, api):
    """run, iterate and arun with display=True show a GraphView that ends with every action done."""
    app = _app()
    if api == "run":
        app.run(halt_after=["stop"], display=True)
    elif api == "iterate":
        assert [a.name for a, _, _ in app.iterate(halt_after=["stop"], display=True)] == ["tick", "stop"]
    else:
        asyncio.run(app.arun(halt_after=["stop"], display=True))
    (view,) = jupyter
    assert isinstance(view, GraphView) and view.value.count(DONE) == 2
    assert app.hooks == [] and app.tracker is None


def test_graph_view_without_dot_shows_the_install_hint_and_the_source(tmp_path, monkeypatch):
    """With no `dot` on PATH the view says how to install Graphviz and shows the DOT source; runs still work."""
    monkeypatch.setenv("PATH", str(tmp_path))
    app = _app()
    view = GraphView(app)
    assert "sudo apt-get install graphviz" in view.value and "digraph nbflow {" in view.value
    assert app.run(halt_after=["stop"])[2]["done"] is True
    view.detach()


def test_graph_view_a_crashing_dot_never_fails_the_run(tmp_path, monkeypatch):
    """A `dot` that fails while the application runs is reported in the view, and the run finishes."""
    app = _app()
    view = GraphView(app)
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'dot: out of memory' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert app.run(halt_after=["stop"])[2]["done"] is True
    assert view.value.startswith("<pre>nbflow could not draw the graph:") and "out of memory" in view.value
    view.detach()
