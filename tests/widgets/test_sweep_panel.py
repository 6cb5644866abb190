"""SweepPanel driven through its widget models: controls, grid size, Run, progress, table, plot, Cancel, export."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import ipywidgets
import pytest

import nbflow
from nbflow import Sweep, SweepError, TaskFailed, load_results
from nbflow.widgets import SweepPanel
from nbflow.widgets.progress import WidgetProgress

REPO_ROOT = Path(__file__).resolve().parents[2]


def train(lr, depth, optimizer="adam"):
    return {"loss": round((lr - 0.01) ** 2 + depth / 100, 6), "acc": 1 - depth / 10}


def body_rows(table_html: str) -> int:
    """How many rows the body of the panel's results table has."""
    body = table_html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return body.count("<tr")


# -- controls from specs ---------------------------------------------------------------------------


def test_sweep_panel_int_range_spec_gives_range_slider_and_its_steps():
    """(min, max) of ints is an IntRangeSlider over both ends; the axis is every integer between the chosen ends."""
    panel = SweepPanel(train, lr=[0.1], depth=(1, 6))
    slider = panel.controls["depth"].widget
    assert isinstance(slider, ipywidgets.IntRangeSlider)
    assert (slider.min, slider.max, slider.value) == (1, 6, (1, 6))
    slider.value = (2, 4)
    assert panel.controls["depth"].values() == [2, 3, 4]


def test_sweep_panel_float_range_spec_takes_points_at_its_step():
    """(min, max, step) of floats is a FloatRangeSlider; the points are taken at that step, without rounding noise."""
    panel = SweepPanel(train, lr=(0.0, 0.5, 0.1), depth=[1])
    control = panel.controls["lr"]
    assert isinstance(control.widget, ipywidgets.FloatRangeSlider)
    assert control.values() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    control.widget.value = (0.1, 0.3)
    assert control.values() == [0.1, 0.2, 0.3]


def test_sweep_panel_float_range_without_step_has_eleven_points():
    """A float (min, max) without a step is cut into ten intervals."""
    panel = SweepPanel(train, lr=(0.0, 1.0), depth=[1])
    assert panel.controls["lr"].values() == [round(i / 10, 1) for i in range(11)]


def test_sweep_panel_log_spec_gives_log_sliders_and_one_point_per_decade():
    """(min, max, "log") is two FloatLogSliders; the axis has one value per decade between them."""
    panel = SweepPanel(train, lr=(1e-4, 1e-1, "log"), depth=[1])
    control = panel.controls["lr"]
    assert control.kind == "log"
    assert isinstance(control.low, ipywidgets.FloatLogSlider)
    assert isinstance(control.high, ipywidgets.FloatLogSlider)
    assert control.values() == [1e-4, 1e-3, 1e-2, 1e-1]
    control.high.value = 1e-2
    assert control.values() == [1e-4, 1e-3, 1e-2]


def test_sweep_panel_log_spec_with_step_in_decades():
    """(min, max, step, "log") takes a value every ``step`` decades."""
    panel = SweepPanel(train, lr=(1e-2, 1.0, 0.5, "log"), depth=[1])
    assert panel.controls["lr"].values() == [0.01, 0.0316227766017, 0.1, 0.316227766017, 1.0]


def test_sweep_panel_log_sliders_keep_their_order():
    """Moving the lower log slider past the upper one pushes the upper one along."""
    panel = SweepPanel(train, lr=(1e-4, 1e-1, "log"), depth=[1])
    control = panel.controls["lr"]
    control.high.value = 1e-3
    control.low.value = 1e-2
    assert control.high.value == pytest.approx(1e-2)
    assert control.values() == [pytest.approx(1e-2)]


def test_sweep_panel_list_spec_is_select_multiple_all_selected():
    """A list becomes a SelectMultiple with every option selected; deselecting shrinks the axis."""
    panel = SweepPanel(train, lr=[0.1], depth=[1], optimizer=["adam", "sgd", "rmsprop"])
    select = panel.controls["optimizer"].widget
    assert isinstance(select, ipywidgets.SelectMultiple)
    assert panel.controls["optimizer"].values() == ["adam", "sgd", "rmsprop"]
    select.index = (0, 2)
    assert panel.controls["optimizer"].values() == ["adam", "rmsprop"]


def test_sweep_panel_bool_and_str_specs_are_single_values():
    """A bool becomes a Checkbox and a str a Text; each axis is the one value it holds."""

    def f(flag, name):
        return {"n": len(name) + flag}

    panel = SweepPanel(f, flag=True, name="abc")
    assert isinstance(panel.controls["flag"].widget, ipywidgets.Checkbox)
    assert isinstance(panel.controls["name"].widget, ipywidgets.Text)
    panel.controls["flag"].widget.value = False
    panel.controls["name"].widget.value = "hello"
    assert panel.grid().points() == [{"flag": False, "name": "hello"}]


def test_sweep_panel_controls_from_signature_defaults():
    """Without specs the defaults decide: int and float a range around them, bool, str, list; None is left alone."""

    def f(depth=3, lr=0.1, shuffle=True, name="run", opt=["adam", "sgd"], extra=None):  # noqa: B006
        return {}

    panel = SweepPanel(f)
    assert list(panel.controls) == ["depth", "lr", "shuffle", "name", "opt"]
    depth, lr = panel.controls["depth"].widget, panel.controls["lr"].widget
    assert isinstance(depth, ipywidgets.IntRangeSlider)
    assert (depth.min, depth.max, depth.value) == (-3, 9, (3, 3))
    assert isinstance(lr, ipywidgets.FloatRangeSlider)
    assert (lr.min, lr.max) == pytest.approx((-0.1, 0.3))
    assert panel.controls["lr"].values() == [0.1]
    assert panel.grid().points() == [
        {"depth": 3, "lr": 0.1, "shuffle": True, "name": "run", "opt": "adam"},
        {"depth": 3, "lr": 0.1, "shuffle": True, "name": "run", "opt": "sgd"},
    ]


def test_sweep_panel_parameter_without_default_needs_a_spec():
    """A parameter with no default and no spec is refused, naming it and the fix."""

    def f(lr, depth=1):
        return {}

    with pytest.raises(SweepError) as info:
        SweepPanel(f)
    assert "'lr'" in str(info.value)
    assert "SweepPanel(f, lr=[...])" in str(info.value)


def test_sweep_panel_axis_not_a_parameter_is_refused_at_once():
    """An axis the target does not take fails when the panel is built, not when Run is pressed."""
    with pytest.raises(SweepError) as info:
        SweepPanel(train, lr=[0.1], depht=(1, 3))
    assert "'depht'" in str(info.value)
    assert "Rename the axis" in str(info.value)


@pytest.mark.parametrize(
    ("spec", "error", "words"),
    [
        ((5, 1), SweepError, "runs backwards"),
        ((0.0, 1.0, "log"), SweepError, "positive ends"),
        ((1e-3, 1.0, -1, "log"), SweepError, "in decades"),
        ((0, 10, 0), SweepError, "must be positive"),
        ({"b", "a"}, SweepError, "sorted(...)"),
        (object(), TypeError, "can't make a control"),
    ],
)
def test_sweep_panel_malformed_spec_names_axis_and_fix(spec, error, words):
    """A malformed axis spec raises an error naming the axis and what to write instead."""
    with pytest.raises(error) as info:
        SweepPanel(train, lr=spec, depth=[1])
    assert "'lr'" in str(info.value)
    assert words in str(info.value)


def test_sweep_panel_refuses_progress_and_live_options():
    """The panel draws its own bar and table, so sweep_options may not set progress or live."""
    with pytest.raises(TypeError) as info:
        SweepPanel(train, sweep_options={"progress": False}, lr=[0.1], depth=[1])
    assert "'progress'" in str(info.value)


# -- grid size and repr ----------------------------------------------------------------------------


def test_sweep_panel_grid_size_label_follows_the_controls():
    """The size label shows the number of points and each axis's count, and updates as controls change."""
    panel = SweepPanel(train, lr=(1e-3, 1e-1, "log"), depth=(1, 4), optimizer=["adam", "sgd"])
    assert panel.size_label.value == "<b>24 points</b> (lr 3 × depth 4 × optimizer 2)"
    panel.controls["depth"].widget.value = (2, 2)
    panel.controls["optimizer"].widget.index = (1,)
    assert panel.size_label.value == "<b>3 points</b> (lr 3 × depth 1 × optimizer 1)"


def test_sweep_panel_no_points_disables_run():
    """Deselecting every option of an axis leaves no points: Run is disabled and run() says which axis is empty."""
    panel = SweepPanel(train, lr=[0.1, 0.2], depth=[1])
    panel.controls["lr"].widget.index = ()
    assert panel.run_button.disabled
    with pytest.raises(SweepError) as info:
        panel.run()
    assert "axis 'lr' has no values selected" in str(info.value)


def test_sweep_panel_repr_is_stable_text():
    """The panel's text repr (what nbval compares) names the target and the grid, with no addresses."""
    panel = SweepPanel(train, lr=[0.1, 0.2], depth=(1, 3))
    assert repr(panel) == "SweepPanel(train: lr 2 × depth 3 = 6 points)"
    bundle = panel._repr_mimebundle_()
    assert bundle["text/plain"] == repr(panel)
    assert "application/vnd.jupyter.widget-view+json" in bundle


# -- running -------------------------------------------------------------------------------------


def test_sweep_panel_run_fills_results_progress_table_and_plot():
    """Clicking Run sweeps the grid in the background; wait() gives every row, the bar reaches max, the table and plot fill."""
    panel = SweepPanel(train, lr=(1e-3, 1e-1, "log"), depth=(1, 2), optimizer=["adam", "sgd"])
    panel.run_button.click()
    df = panel.wait(timeout=60)
    assert len(df) == 12
    assert df["status"].tolist() == ["ok"] * 12
    assert df.loc[df["lr"] == 0.01, "loss"].tolist() == [0.01, 0.01, 0.02, 0.02]
    assert panel.results is not None and len(panel.results) == 12
    assert panel.progress.max == 12
    assert panel.progress.value == 12
    assert panel.progress.bar_style == "success"
    assert body_rows(panel.table.value) == 12
    assert "12 rows" in panel.table.value
    assert panel.status.value.startswith("Run 1 finished: 12 of 12 points · 12 ok")
    assert not panel.run_button.disabled and panel.cancel_button.disabled
    # The plot: loss (the first output) against lr on a log scale, a dot per point, the means joined.
    assert panel.metric_dropdown.options == ("loss", "acc", "duration_s")
    assert panel.metric_dropdown.value == "loss"
    # Drawn by nbflow.sweeps.plots: the mean over depth and optimizer at each lr, and a dot per
    # point whose hover title gives its parameters.
    assert "loss against lr (log scale)" in panel.plot.value
    assert panel.plot.value.count('<g id="nbflow-point-') == 12
    assert "<title>lr=0.01, depth=1, optimizer=adam, loss=0.01</title>" in panel.plot.value


def test_sweep_panel_dropdowns_choose_metric_and_axis():
    """Choosing another metric or axis redraws the plot; a non-numeric axis is placed in grid order."""
    panel = SweepPanel(train, lr=[0.01, 0.1], depth=(1, 3), optimizer=["adam", "sgd"])
    panel.run()
    panel.wait(timeout=60)
    panel.metric_dropdown.value = "acc"
    panel.axis_dropdown.value = "depth"
    assert "acc against depth" in panel.plot.value
    assert "log scale" not in panel.plot.value
    panel.axis_dropdown.value = "optimizer"
    assert "acc against optimizer" in panel.plot.value
    assert re.search(r">adam</text>.*>sgd</text>", panel.plot.value, re.S)


def test_sweep_panel_run_twice_replaces_results():
    """A second Run sweeps the grid the controls give then; results and the run number follow."""
    panel = SweepPanel(train, lr=[0.1], depth=(1, 4))
    panel.run()
    assert len(panel.wait(timeout=60)) == 4
    panel.controls["depth"].widget.value = (1, 2)
    panel.run_button.click()
    assert len(panel.wait(timeout=60)) == 2
    assert panel.status.value.startswith("Run 2 finished: 2 of 2 points")
    assert body_rows(panel.table.value) == 2


def test_sweep_panel_run_while_running_is_refused():
    """run() during a run raises, naming wait() and cancel(); the Run button is disabled meanwhile."""
    gate = threading.Event()

    def slow(x):
        gate.wait(30)
        return {"y": x}

    panel = SweepPanel(slow, sweep_options={"executor": "sequential"}, x=[1, 2])
    panel.run()
    try:
        assert panel.run_button.disabled and not panel.cancel_button.disabled
        with pytest.raises(SweepError) as info:
            panel.run()
        assert "already running" in str(info.value) and "panel.cancel()" in str(info.value)
    finally:
        gate.set()
        panel.wait(timeout=60)


def test_sweep_panel_failed_points_are_error_rows():
    """A point that raises becomes an error row (Sweep's on_error='record'); the status counts it."""

    def picky(x):
        if x == 2:
            raise ValueError("two is right out")
        return {"y": x * 10}

    panel = SweepPanel(picky, x=[1, 2, 3])
    panel.run()
    df = panel.wait(timeout=60)
    assert df["status"].tolist() == ["ok", "error", "ok"]
    assert "ValueError: two is right out" in df["error"].iloc[1]
    assert "1 error" in panel.status.value and "2 ok" in panel.status.value
    assert "two is right out" in panel.table.value


def test_sweep_panel_wait_raises_what_the_sweep_raised():
    """With on_error='raise' a failure ends the run; wait() raises it and the status shows it."""

    def picky(x):
        if x == 2:
            raise ValueError("two is right out")
        return {"y": x}

    panel = SweepPanel(picky, sweep_options={"on_error": "raise", "executor": "sequential"}, x=[1, 2, 3])
    panel.run()
    with pytest.raises(TaskFailed):
        panel.wait(timeout=60)
    assert "failed" in panel.status.value and "two is right out" in panel.status.value
    assert not panel.run_button.disabled


def test_sweep_panel_wait_times_out_while_running():
    """wait(timeout) raises TimeoutError naming cancel() when the sweep is still going."""
    gate = threading.Event()

    def slow(x):
        gate.wait(30)
        return {"y": x}

    panel = SweepPanel(slow, sweep_options={"executor": "sequential"}, x=[1])
    panel.run()
    try:
        with pytest.raises(TimeoutError) as info:
            panel.wait(timeout=0.01)
        assert "panel.cancel()" in str(info.value)
    finally:
        gate.set()
        panel.wait(timeout=60)


def test_sweep_panel_cancel_mid_run_keeps_partial_results():
    """Cancel stops the sweep: points finished stay ok, the rest become cancelled rows, the status says so."""
    entered, gate = threading.Event(), threading.Event()

    def slow(x):
        if x == 2:
            entered.set()
            gate.wait(30)
        return {"y": x}

    panel = SweepPanel(slow, sweep_options={"executor": "sequential"}, x=(0, 9))
    panel.run_button.click()
    try:
        assert entered.wait(30), "the sweep never reached point x=2"
        panel.cancel_button.click()
        assert panel.cancel_button.disabled
    finally:
        gate.set()
    df = panel.wait(timeout=60)
    assert len(df) == 10
    statuses = df["status"].tolist()
    assert statuses[:2] == ["ok", "ok"]
    assert "cancelled" in statuses
    assert set(statuses) <= {"ok", "cancelled"}
    done = statuses.count("ok")
    assert statuses == ["ok"] * done + ["cancelled"] * (10 - done)
    assert df.loc[df["status"] == "ok", "y"].tolist() == list(range(done))
    assert panel.status.value.startswith(f"Run 1 cancelled: {done} of 10 points")
    assert panel.progress.bar_style == "warning"
    assert body_rows(panel.table.value) == 10


def test_sweep_panel_cancel_when_idle_does_nothing():
    """Cancel with no sweep running changes nothing."""
    panel = SweepPanel(train, lr=[0.1], depth=[1])
    panel.cancel()
    assert panel.status.value == "Not run yet."


# -- results and export ------------------------------------------------------------------------


def test_sweep_panel_results_before_run_is_an_empty_frame():
    """Before any run, panel.results is an empty frame with the axis columns, and the table says 0 rows."""
    panel = SweepPanel(train, lr=[0.1], depth=[1])
    assert len(panel.results) == 0
    assert list(panel.results.columns)[:2] == ["lr", "depth"]
    assert "0 rows" in panel.table.value


def test_sweep_panel_export_button_writes_file_with_provenance(tmp_path):
    """The Export button writes the results to the path in its field; load_results reads them back."""
    panel = SweepPanel(train, lr=[0.01, 0.1], depth=(1, 2))
    panel.run()
    panel.wait(timeout=60)
    target = tmp_path / "runs.json"
    panel.export_path.value = str(target)
    panel.export_button.click()
    assert target.exists()
    assert f"Wrote {target}: 4 rows (4 ok)." == panel.export_status.value
    back = load_results(target)
    assert (
        back[["lr", "depth", "loss"]].values.tolist()
        == panel.results[["lr", "depth", "loss"]].values.tolist()
    )
    assert back.attrs["nbflow"]["target_name"] == "train"
    assert back.attrs["nbflow"]["axes"] == {"lr": [0.01, 0.1], "depth": [1, 2]}
    assert json.loads(target.read_text())["format"] == "nbflow-results"


def test_sweep_panel_export_method_takes_a_path(tmp_path):
    """panel.export(path) writes a CSV with its sidecar and returns the path."""
    panel = SweepPanel(train, lr=[0.1], depth=[1, 2])
    panel.run()
    panel.wait(timeout=60)
    path = panel.export(tmp_path / "runs.csv")
    assert path == tmp_path / "runs.csv"
    assert len(load_results(path)) == 2


def test_sweep_panel_export_before_run_says_press_run(tmp_path):
    """Export with no results yet shows an error naming the fix, and writes nothing."""
    panel = SweepPanel(train, lr=[0.1], depth=[1])
    panel.export_path.value = str(tmp_path / "runs.csv")
    panel.export_button.click()
    assert "press Run" in panel.export_status.value
    assert not (tmp_path / "runs.csv").exists()


# -- the progress adapter and the lazy import -------------------------------------------------------


def test_widget_progress_counts_a_plain_sweep():
    """WidgetProgress is a tqdm-like class: Sweep(progress=...) moves the IntProgress to the number of points."""
    bar = ipywidgets.IntProgress()
    seen = []
    progress = functools.partial(WidgetProgress, bar, on_update=lambda p: seen.append(p.n))
    Sweep(lambda x: x, {"x": [1, 2, 3, 4]}, progress=progress, executor="sequential").run()
    assert (bar.value, bar.max, bar.bar_style) == (4, 4, "success")
    assert seen[0] == 0 and seen[-1] == 4


def test_nbflow_exports_widgets_lazily():
    """`import nbflow` loads no ipywidgets; `from nbflow import SweepPanel, HistoryView, GraphView` does."""
    code = (
        "import sys\n"
        "import nbflow\n"
        "before = 'ipywidgets' in sys.modules\n"
        "from nbflow import SweepPanel, HistoryView, GraphView\n"
        "print(before, 'ipywidgets' in sys.modules, SweepPanel.__name__, HistoryView.__name__, GraphView.__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "SweepPanel", "HistoryView", "GraphView"]


RELEASE_PANEL = threading.Event()


def slow_when_deep(lr, depth):
    if depth > 2:
        RELEASE_PANEL.wait(30)
    return {"loss": lr * depth}


def test_sweep_panel_timeout_option_makes_hung_points_timeout_rows():
    """sweep_options={'timeout': ...} reaches the sweep: a hung point is a `timeout` row, the rest ok."""
    panel = SweepPanel(slow_when_deep, lr=[0.1], depth=[1, 2, 3], sweep_options={"timeout": 0.5})
    panel.run()
    try:
        df = panel.wait(timeout=60)
    finally:
        RELEASE_PANEL.set()
    assert df["status"].tolist() == ["ok", "ok", "timeout"]


def test_sweep_panel_export_says_how_many_rows_of_each_status_and_a_new_run_clears_it(tmp_path):
    """The message counts what the file holds by status; it spoke of one run, so the next run clears it."""

    def fragile(lr, depth):
        if depth == 2:
            raise ValueError("depth 2 diverges")
        return {"loss": lr}

    panel = SweepPanel(fragile, lr=[0.01, 0.1], depth=(1, 3))
    panel.run()
    panel.wait(timeout=60)
    panel.export_path.value = str(tmp_path / "runs.csv")
    panel.export_button.click()
    assert panel.export_status.value == f"Wrote {tmp_path / 'runs.csv'}: 6 rows (2 error, 4 ok)."
    assert len(load_results(tmp_path / "runs.csv")) == 6
    panel.run()
    assert panel.export_status.value == ""
    panel.wait(timeout=60)


def test_sweep_panel_n_jobs_control_sets_how_many_points_run_at_once():
    """The n_jobs field goes to Sweep(n_jobs=...) on each Run; a fixed executor greys it out."""
    panel = SweepPanel(train, lr=[0.01, 0.1], depth=(1, 2), sweep_options={"n_jobs": 3})
    assert panel.n_jobs.value == 3 and not panel.n_jobs.disabled
    panel.n_jobs.value = 2
    panel.run()
    panel.wait(timeout=60)
    assert panel.sweep.executor.max_concurrency == 2
    fixed = SweepPanel(train, lr=[0.1], depth=[1], sweep_options={"executor": "sequential"})
    assert fixed.n_jobs.disabled and fixed.n_jobs.value == 1
    fixed.run()
    assert fixed.wait(timeout=60)["status"].tolist() == ["ok"]


def test_sweep_panel_log_slider_reads_out_values_as_typed():
    """0.001, not 0.00100: a d3 format with no type is g without its insignificant trailing zeros."""
    panel = SweepPanel(train, lr=(1e-3, 1e-1, "log"), depth=(1, 2))
    control = panel.controls["lr"]
    assert control.low.readout_format == control.high.readout_format == ".4"


def test_sweep_panel_counts_rows_by_the_run_status_even_when_an_output_is_named_status(tmp_path):
    def solver(tol):
        return {"status": "converged", "tol_used": tol}

    panel = SweepPanel(solver, tol=[0.1, 0.01])
    panel.run()
    panel.wait(timeout=60)
    assert panel.status.value.startswith("Run 1 finished: 2 of 2 points · 2 ok")
    panel.export(tmp_path / "runs.csv")
    panel.export_path.value = str(tmp_path / "runs.csv")
    panel.export_button.click()
    assert panel.export_status.value.endswith(": 2 rows (2 ok).")


def test_sweep_panel_leaves_a_clusters_n_jobs_to_the_cluster():
    """On Dask or Ray the executor sizes what it keeps in flight from the cluster: no field, no n_jobs passed."""
    panel = SweepPanel(train, lr=[0.1], depth=[1], sweep_options={"executor": "dask"})
    assert panel.n_jobs.disabled and panel.n_jobs.layout.display == "none"
    asked = SweepPanel(train, lr=[0.1], depth=[1], sweep_options={"executor": "dask", "n_jobs": 8})
    assert not asked.n_jobs.disabled and asked.n_jobs.value == 8


def test_sweep_panel_plots_an_axis_of_lists_by_their_text():
    """A list-valued axis (layer sizes) is placed and labelled by its text, as df.nbflow.plot does."""
    from nbflow.widgets.panel_plot import metric_plot

    df = nbflow.sweep(
        lambda layers, lr: {"acc": lr * len(layers)},
        {"layers": [[64], [64, 64]], "lr": [0.1, 0.2]},
        progress=False,
    )
    svg = metric_plot(df, "acc", "layers", ["layers", "lr"])
    assert svg.count('<g id="nbflow-point-') == 4
    assert "<title>layers=[64, 64], lr=0.1, acc=0.2</title>" in svg


# -- adaptive search --------------------------------------------------------------------------------


def test_sweep_panel_adaptive_searches_the_controls_ranges_with_optuna():
    """Set to "adaptive", the controls' ranges are the space, and Run asks an Optuna study for each point."""
    pytest.importorskip("optuna")

    def train(lr, depth, opt):
        return {"loss": (lr - 0.01) ** 2 + depth / 100 + (0 if opt == "adam" else 0.5)}

    panel = SweepPanel(train, lr=(1e-4, 1e-1, "log"), depth=(1, 4), opt=["adam", "sgd"])
    assert panel.n_trials.layout.display == "none"
    panel.search_mode.value = "adaptive"
    assert panel.n_trials.layout.display is None
    panel.n_trials.value = 12
    panel.objective.value = "loss"
    assert "12 trials" in panel.size_label.value and "min loss" in panel.size_label.value
    space = panel.search().space
    assert (repr(space["lr"]), repr(space["depth"]), repr(space["opt"])) == (
        "loguniform(0.0001, 0.1)", "randint(1, 4)", "choice(['adam', 'sgd'])",
    )  # fmt: skip
    panel.run()
    df = panel.wait(timeout=120)
    assert panel.error is None
    assert len(df) == 12 and set(df["status"]) == {"ok"}
    assert df["lr"].between(1e-4, 1e-1).all() and set(df["depth"]) <= {1, 2, 3, 4}
    assert df.attrs["nbflow"]["search"]["metric"] == "loss"
    assert "12 of 12" in panel.status.value or "finished" in panel.status.value


def test_sweep_panel_adaptive_without_a_metric_says_what_to_type():
    pytest.importorskip("optuna")
    panel = SweepPanel(lambda lr: {"loss": lr}, lr=(0.0, 1.0))
    panel.search_mode.value = "adaptive"
    with pytest.raises(SweepError, match=r"needs the metric to optimize.*'optimize' field"):
        panel.run()
    assert not panel.running
