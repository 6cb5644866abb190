"""`nbflow.compare`: runs side by side on the axes they share, what is not shared said aloud,
and a clear error when nothing is shared. Runs are real recordings in a tmp_path store."""

import warnings

import matplotlib
import pandas as pd
import pytest

import nbflow
from nbflow.errors import ResultsError

matplotlib.use("Agg")


def rbf(C, gamma):
    return {"acc": C * gamma / 10, "fit_s": 1.0}


def linear(C):
    return {"acc": C / 10}


@pytest.fixture
def store(tmp_path):
    return tmp_path / "runs"


def record(target, axes, store, name, **options):
    return nbflow.sweep(target, axes, progress=False, store=store, name=name, **options)


def test_two_runs_over_the_same_axes_line_up_with_a_diff(store):
    a = record(linear, {"C": [1, 2, 4]}, store, "a")
    b = record(lambda C: {"acc": C / 5}, {"C": [4, 2, 1]}, store, "b")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to report: every axis is shared
        table = nbflow.compare(
            a.attrs["nbflow"]["run_id"], b.attrs["nbflow"]["run_id"], metric="acc", store=store
        )
    assert list(table.columns) == ["C", "acc (a)", "acc (b)", "diff"]
    table = table.sort_values("C").reset_index(drop=True)
    assert table["C"].tolist() == [1, 2, 4]
    assert table["acc (a)"].tolist() == [0.1, 0.2, 0.4]
    assert table["acc (b)"].tolist() == [0.2, 0.4, 0.8]
    assert table["diff"].tolist() == pytest.approx([0.1, 0.2, 0.4])
    said = table.attrs["nbflow"]["compare"]
    assert (
        said["on"] == ["C"] and said["not_shared"] == {} and said["runs"]["a"] == a.attrs["nbflow"]["run_id"]
    )


def test_partly_shared_axes_join_on_the_shared_ones_and_report_the_rest(store):
    """A run over C and gamma against one over C: at each C, the mean over gamma, and a warning saying so."""
    a = record(rbf, {"C": [1, 2], "gamma": [1, 3]}, store, "rbf")
    b = record(linear, {"C": [1, 2, 8]}, store, "linear")
    with pytest.warns(UserWarning, match=r"joined the runs on \['C'\].*rbf also varies \['gamma'\]"):
        table = nbflow.compare(a, b, metric="acc", store=store)
    assert table.to_dict("list") == {
        "C": [1, 2, 8],
        "acc (rbf)": [0.2, 0.4, pytest.approx(float("nan"), nan_ok=True)],
        "acc (linear)": [0.1, 0.2, 0.8],
        "diff": [pytest.approx(-0.1), pytest.approx(-0.2), pytest.approx(float("nan"), nan_ok=True)],
    }
    said = table.attrs["nbflow"]["compare"]
    assert said["not_shared"] == {"rbf": ["gamma"]} and said["averaged"] == {"rbf": ["gamma"]}


def test_no_shared_axis_is_a_clear_error_naming_each_runs_axes(store):
    a = record(rbf, {"C": [1], "gamma": [1]}, store, "rbf")
    b = record(lambda depth: {"acc": depth}, {"depth": [1, 2]}, store, "tree")
    with pytest.raises(
        ResultsError, match=r"share no axis.*'rbf' \(.*\): \['C', 'gamma'\]; 'tree' \(.*\): \['depth'\]"
    ):
        nbflow.compare(a, b, metric="acc", store=store)


def test_on_picks_the_join_axes_and_must_be_shared(store):
    a = record(rbf, {"C": [1, 2], "gamma": [1, 3]}, store, "x")
    b = record(rbf, {"C": [1, 2], "gamma": [1, 3]}, store, "y")
    with pytest.warns(UserWarning, match=r"also varies \['gamma'\]"):
        table = nbflow.compare(a, b, metric="acc", on="C", store=store)
    assert table["C"].tolist() == [1, 2]
    with pytest.raises(ResultsError, match=r"compare\(on=\['depth'\]\): run 'x'.*has no axis \['depth'\]"):
        nbflow.compare(a, b, metric="acc", on="depth", store=store)


def test_three_runs_have_no_diff_and_repeated_names_fall_back_to_ids(store):
    runs = [record(linear, {"C": [1, 2]}, store, "same") for _ in range(3)]
    ids = [r.attrs["nbflow"]["run_id"] for r in runs]
    table = nbflow.compare(*ids, metric="acc", store=store)
    assert list(table.columns) == ["C", *(f"acc ({i})" for i in ids)]


def test_only_finished_rows_count(store):
    def flaky(C):
        if C == 2:
            raise RuntimeError("boom")
        return {"acc": C / 10}

    a = record(flaky, {"C": [1, 2]}, store, "flaky")
    b = record(linear, {"C": [1, 2]}, store, "fine")
    table = nbflow.compare(a, b, metric="acc", store=store)
    assert table["acc (flaky)"].tolist()[0] == 0.1 and pd.isna(table["acc (flaky)"].tolist()[1])


def test_a_metric_a_run_lacks_names_the_run_and_its_numeric_columns(store):
    a = record(linear, {"C": [1]}, store, "lin")
    b = record(lambda C: {"loss": C}, {"C": [1]}, store, "other")
    with pytest.raises(
        ResultsError, match=r"run 'other' has no numeric output 'acc'. Its numeric columns: \['C', 'loss'"
    ):
        nbflow.compare(a, b, metric="acc", store=store)


def test_fewer_than_two_runs_is_an_error(store):
    a = record(linear, {"C": [1]}, store, "a")
    with pytest.raises(ResultsError, match=r"two or more runs"):
        nbflow.compare(a, metric="acc", store=store)
    with pytest.raises(ResultsError, match=r"given more than once"):
        nbflow.compare(a, a, metric="acc", store=store)


def test_an_output_named_like_an_axis_is_compared_by_its_name(store):
    """An output 'C' beside an axis 'C' is the column 'C_out'; compare(metric='C') finds it."""
    a = record(lambda C: {"C": C * 2}, {"C": [1, 2]}, store, "a")
    b = record(lambda C: {"C": C * 3}, {"C": [1, 2]}, store, "b")
    table = nbflow.compare(a, b, metric="C", store=store)
    assert table["C (a)"].tolist() == [2, 4] and table["C (b)"].tolist() == [3, 6]


def test_the_comparison_plots_one_line_per_run(store):
    a = record(linear, {"C": [1, 2, 4]}, store, "a")
    b = record(lambda C: {"acc": C / 5}, {"C": [1, 2, 4]}, store, "b")
    ax = nbflow.compare(a, b, metric="acc", store=store).nbflow.plot()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["run=a", "run=b"]
    assert ax.get_xlabel() == "C" and ax.get_ylabel() == "acc"
