"""`RunsView`: the run store as a widget. Each test drives it as the buttons would, over a real
store of recorded sweeps, and checks what it shows and what it changes on disk."""

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


def test_lists_every_run_and_the_store_size(store):
    view = RunsView(store)
    assert view.run_ids == nbflow.runs(store)["run_id"].tolist()
    assert "3 runs" in view.size_label.value and " kB" in view.size_label.value
    assert "svm-rbf" in view.choices.options[0][0] and "complete" in view.choices.options[0][0]


def test_filters_narrow_the_list(store):
    view = RunsView(store)
    view.name_filter.value = "svm-*"
    assert len(view.run_ids) == 2
    view.status_filter.value = "cancelled"
    assert view.run_ids == [] and "No runs" in view.table.value


def test_load_keeps_the_run_as_load_run_gives_it(store):
    view = RunsView(store)
    view.select(view.run_ids[0])
    view.load_button.click()
    pd.testing.assert_frame_equal(view.loaded, nbflow.load_run(view.run_ids[0], store))
    assert "Loaded" in view.message.value and "<table" in view.result.value


def test_compare_two_gives_the_table_compare_gives_and_a_plot(store):
    view = RunsView(store)
    view.select(*view.run_ids[:2])
    assert view.metric.value == "acc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rbf also varies gamma: said in the message too
        view.compare_button.click()
        expected = nbflow.compare(*view.run_ids[:2], metric="acc", store=store)
    pd.testing.assert_frame_equal(view.compared, expected)
    assert "acc (svm-rbf)" in view.result.value and "<svg" in view.plot.value
    assert "averaged over" in view.message.value


def test_compare_without_a_shared_axis_says_so_and_raises_nothing(store):
    view = RunsView(store)
    view.select(view.run_ids[0], view.run_ids[2])
    assert view.metric.options == ()  # acc and loss: no output in common
    view.compare(metric="acc")
    assert "tree" in view.message.value and view.compared is None


def test_buttons_used_with_the_wrong_selection_say_what_to_select(store):
    view = RunsView(store)
    view.load_button.click()
    assert "Select one run" in view.message.value
    view.select(view.run_ids[0])
    view.compare_button.click()
    assert "Select two runs" in view.message.value
    view.choices.value = ()
    view.delete_button.click()
    assert "Select the runs to delete" in view.message.value


def test_delete_asks_first_and_never_touches_the_cache(store, tmp_path):
    cache = tmp_path / "cache"
    nbflow.sweep(linear, {"C": [5]}, progress=False, store=store, cache=cache, name="cached")
    cached_files = sorted(p.name for p in cache.rglob("*"))
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
    assert sorted(p.name for p in cache.rglob("*")) == cached_files


def test_a_saved_notebook_shows_the_table_of_runs(store):
    bundle = RunsView(store)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<table" in bundle["text/html"] and "svm-linear" in bundle["text/html"]
    assert bundle["text/plain"] == "RunsView(3 runs, 0 selected)"


def test_an_empty_store_says_how_runs_get_there(tmp_path):
    view = RunsView(tmp_path / "none")
    assert view.run_ids == [] and "Every sweep records itself" in view.table.value
    assert "0 runs" in view.size_label.value
