"""`RunsView`: the run store as a widget. Each test drives it as the buttons would, over a real
store of recorded sweeps, and checks what it shows and what it changes on disk."""

import sys
import warnings

import matplotlib
import pandas as pd
import pytest

import nbflow
from nbflow.widgets import RunsView

matplotlib.use("Agg")


def rbf(C, gamma):
    return {"acc": C * gamma / 10}


def linear(C):
    return {"acc": C / 10}


@pytest.fixture
def store(tmp_path):
    store = tmp_path / "runs"
    nbflow.sweep(rbf, {"C": [1, 2], "gamma": [1, 3]}, progress=False, store=store, name="svm-rbf")
    nbflow.sweep(linear, {"C": [1, 2]}, progress=False, store=store, name="svm-linear")
    nbflow.sweep(lambda depth: {"loss": depth}, {"depth": [1]}, progress=False, store=store, name="tree")
    return store


def test_runs_view_lists_every_run_and_the_store_size(store):
    """Every recorded run is listed (as nbflow.runs lists them), labelled by name and status, beside the store's size."""
    view = RunsView(store)
    assert view.run_ids == nbflow.runs(store)["run_id"].tolist()
    assert "3 runs" in view.size_label.value and " kB" in view.size_label.value
    assert "svm-rbf" in view.choices.options[0][0] and "complete" in view.choices.options[0][0]
    started = nbflow.runs(store)["started_at"].iloc[0].strftime("%Y-%m-%d %H:%M:%S")
    assert view.run_ids[0] in view.table.value and f"<td>{started}</td>" in view.table.value


def test_runs_view_filters_narrow_the_list(store):
    """A name pattern, then a status, narrow the list; nothing left says so in the table."""
    view = RunsView(store)
    view.name_filter.value = "svm-*"
    assert len(view.run_ids) == 2
    view.status_filter.value = "cancelled"
    assert view.run_ids == [] and "No runs" in view.table.value


def test_runs_view_load_keeps_the_run_as_load_run_gives_it(store):
    """Load on one selected run puts nbflow.load_run's frame in view.loaded and shows its rows."""
    view = RunsView(store)
    view.select(view.run_ids[0])
    view.load_button.click()
    pd.testing.assert_frame_equal(view.loaded, nbflow.load_run(view.run_ids[0], store))
    assert "Loaded" in view.message.value and "<table" in view.result.value


def test_runs_view_compare_two_gives_the_table_compare_gives_and_a_plot(store):
    """Compare on two runs shows nbflow.compare's table and a plot; the averaging is said in the view, not warned."""
    view = RunsView(store)
    view.select(*view.run_ids[:2])
    assert view.metric.value == "acc"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        view.compare_button.click()
    with pytest.warns(UserWarning, match="averaged over"):
        expected = nbflow.compare(*view.run_ids[:2], metric="acc", store=store)
    pd.testing.assert_frame_equal(view.compared, expected)
    assert "acc (svm-rbf)" in view.result.value and "<svg" in view.plot.value
    assert "averaged over" in view.message.value


def test_runs_view_compare_without_a_shared_axis_says_so_and_raises_nothing(store):
    """Two runs with a common output but no common axis: the view shows compare's reason and keeps nothing."""
    nbflow.sweep(lambda depth: {"acc": depth}, {"depth": [1, 2]}, progress=False, store=store, name="forest")
    view = RunsView(store)
    view.select(view.run_ids[0], view.run_ids[-1])
    assert view.metric.options == ("acc",)
    view.compare_button.click()
    assert "share no axis" in view.message.value and "forest" in view.message.value
    assert view.compared is None and view.result.value == "" and view.plot.value == ""


def test_runs_view_compare_without_a_common_output_says_so(store):
    """Runs with no numeric output in common offer no metric, and comparing them names the run lacking it."""
    view = RunsView(store)
    view.select(view.run_ids[0], view.run_ids[2])
    assert view.metric.options == ()  # acc and loss: no output in common
    view.compare_button.click()
    assert "no numeric output in common" in view.message.value and view.compared is None
    view.compare(metric="acc")
    assert "tree" in view.message.value and view.compared is None


def test_runs_view_plot_without_matplotlib_names_the_extra(store, monkeypatch):
    """Without matplotlib the comparison table still shows, and the plot's place says which extra to install."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    view = RunsView(store)
    view.select(*view.run_ids[:2])
    view.compare()
    assert "acc (svm-linear)" in view.result.value
    assert "pip install 'nbflow[plot]'" in view.plot.value


def test_runs_view_buttons_used_with_the_wrong_selection_say_what_to_select(store):
    """Load without one run, Compare without two and Delete without any each say what to select."""
    view = RunsView(store)
    view.load_button.click()
    assert "Select one run" in view.message.value
    view.select(view.run_ids[0])
    view.compare_button.click()
    assert "Select two runs" in view.message.value
    view.choices.value = ()
    view.delete_button.click()
    assert "Select the runs to delete" in view.message.value and not view.confirmation.children
    view.confirm()
    assert "Nothing to delete" in view.message.value and len(view.run_ids) == 3


def test_runs_view_delete_asks_first_and_never_touches_the_cache(store, tmp_path):
    """Delete asks; Cancel keeps the run; Confirm removes that run only, and leaves the result cache as it was."""
    cache = tmp_path / "cache"
    nbflow.sweep(linear, {"C": [5]}, progress=False, store=store, cache=cache, name="cached")
    view = RunsView(store)
    doomed = view.run_ids[-1]
    view.select(doomed)
    view.delete_button.click()
    assert view.confirmation.children and doomed in view.message.value
    view.cancel_button.click()
    assert doomed in view.run_ids and not view.confirmation.children
    view.select(doomed)
    view.delete_button.click()
    view.confirm_button.click()
    assert doomed not in view.run_ids and len(view.run_ids) == 3
    # The cache still answers: the same point is not computed again. (Its file listing is no
    # measure: SQLite's -wal and -shm files come and go with the cache's connection.)
    again = nbflow.sweep(linear, {"C": [5]}, progress=False, store=store, cache=cache, name="cached")
    assert again["status"].tolist() == ["cached"]


def test_runs_view_confirm_deletes_the_rest_when_one_went_meanwhile(store):
    """A run deleted elsewhere between Delete and Confirm is reported; the other selected run is still deleted."""
    view = RunsView(store)
    first, second = view.run_ids[:2]
    view.select(first, second)
    view.delete()
    nbflow.delete_run(first, store)
    view.confirm()
    assert view.run_ids == nbflow.runs(store)["run_id"].tolist() and len(view.run_ids) == 1
    assert "Deleted 1 run(s)." in view.message.value and first in view.message.value


def test_runs_view_a_saved_notebook_shows_the_table_of_runs(store):
    """The mimebundle holds the widget and, for a static view, an HTML table of the runs."""
    bundle = RunsView(store)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<table" in bundle["text/html"] and "svm-linear" in bundle["text/html"]
    assert bundle["text/plain"] == "RunsView(3 runs, 0 selected)"


def test_runs_view_an_empty_store_says_how_runs_get_there(tmp_path):
    """A store with no runs lists none and says that sweeps record themselves there."""
    view = RunsView(tmp_path / "none")
    assert view.run_ids == [] and "Every sweep records itself" in view.table.value
    assert "0 runs" in view.size_label.value


def test_runs_view_names_a_store_in_the_working_folder_relative_to_it(tmp_path, monkeypatch):
    """A store inside the notebook's folder is named as a relative path, so the view shows no machine's paths."""
    monkeypatch.chdir(tmp_path)
    nbflow.sweep(linear, {"C": [1]}, progress=False, store=tmp_path / "runs", name="svm-linear")
    view = RunsView(tmp_path / "runs")
    assert "1 run</b>" in view.size_label.value and "<code>runs</code>" in view.size_label.value
