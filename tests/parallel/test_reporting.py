"""nbflow.report inside a point: curves in df.nbflow.curves(), last values as columns, on every executor.

The reports of a task's last attempt travel with its result, so they come back from worker
processes, are cached with it, and survive a failure after reporting.
"""

from __future__ import annotations

import pathlib
import warnings

import pytest

import nbflow
from nbflow import Sweep, grid, load_results, sweep
from nbflow.parallel import reporting


def train(lr, epochs):
    """Reports a loss that falls with each epoch; returns its own 'final' and overrides 'acc'."""
    for epoch in range(epochs):
        nbflow.report(step=epoch, loss=lr / (epoch + 1), acc=epoch / 10)
    return {"final": lr / epochs, "acc": -1.0}


async def atrain(lr, epochs):
    return train(lr, epochs)


def _expected_curves(lrs, epochs):
    return [
        [lr, epochs, task, epoch, lr / (epoch + 1), epoch / 10]
        for task, lr in enumerate(lrs)
        for epoch in range(epochs)
    ]


@pytest.mark.parametrize("target", [train, atrain])
def test_report_gives_curves_and_last_values_as_columns_on_every_executor(executor_name, target):
    """Every report is a row of curves(); each metric's last value is a column; what the point returns wins."""
    df = sweep(target, grid(lr=[1.0, 2.0], epochs=[3]), executor=executor_name, progress=False)
    assert df["status"].tolist() == ["ok", "ok"]
    assert df["loss"].tolist() == [1.0 / 3, 2.0 / 3]
    assert df["acc"].tolist() == [-1.0, -1.0]  # returned, so not the reported 0.2
    assert df["final"].tolist() == [1.0 / 3, 2.0 / 3]
    curves = df.nbflow.curves()
    assert list(curves.columns) == ["lr", "epochs", "task_id", "step", "loss", "acc"]
    assert curves.values.tolist() == _expected_curves([1.0, 2.0], 3)


def fails_after_reporting(x):
    for step in range(3):
        nbflow.report(step=step, score=x + step)
    if x == 1:
        raise RuntimeError("diverged at step 3")
    return x


def test_a_point_that_fails_after_reporting_keeps_its_curve_and_only_its_error(executor_name):
    df = sweep(fails_after_reporting, {"x": [0, 1]}, executor=executor_name, progress=False)
    assert df["status"].tolist() == ["ok", "error"]
    assert df.loc[0, "score"] == 2 and df["score"].isna().tolist() == [False, True]
    assert "diverged" in df.loc[1, "error"]
    assert df.nbflow.curves().query("task_id == 1")["score"].tolist() == [1, 2, 3]


def retried(marks, x):
    """Reports three steps and fails on the first attempt; reports two and succeeds on the second."""
    mark = pathlib.Path(marks) / str(x)
    first = not mark.exists()
    mark.touch()
    for step in range(3 if first else 2):
        nbflow.report(step=step, attempt_loss=10 * first + step)
    if first:
        raise ValueError("first attempt")
    return {}


def test_a_retried_point_keeps_the_reports_of_its_last_attempt(executor_name, tmp_path):
    df = sweep(
        retried,
        grid(marks=[str(tmp_path)], x=[1]),
        executor=executor_name,
        retries=1,
        retry_backoff_s=0,
        progress=False,
    )
    assert df["attempts"].tolist() == [2] and df["status"].tolist() == ["ok"]
    assert df.nbflow.curves()[["step", "attempt_loss"]].values.tolist() == [[0, 0], [1, 1]]


def test_cached_points_keep_their_metrics_and_curves(tmp_path):
    cache = str(tmp_path / "cache")
    first = sweep(train, grid(lr=[1.0, 2.0], epochs=[2]), cache=cache, progress=False)
    again = sweep(train, grid(lr=[1.0, 2.0], epochs=[2]), cache=cache, progress=False)
    assert again["status"].tolist() == ["cached", "cached"]
    assert again["loss"].tolist() == first["loss"].tolist()
    assert again.nbflow.curves().equals(first.nbflow.curves())


@pytest.mark.parametrize("suffix", [".json", ".csv", ".parquet"])
def test_curves_survive_an_export_and_load(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    df = sweep(train, grid(lr=[1.0, 2.0], epochs=[2]), progress=False)
    back = load_results(df.nbflow.export(tmp_path / f"runs{suffix}"))
    assert back.nbflow.curves().equals(df.nbflow.curves())


def test_curves_of_a_slice_are_the_slices_and_rerun_failed_keeps_them(tmp_path):
    df = sweep(fails_after_reporting, {"x": [0, 1, 2]}, progress=False)
    assert df.nbflow.curves().query("x == 1").empty is False
    assert df[df["x"] == 2].nbflow.curves()["x"].unique().tolist() == [2]
    s = Sweep(fails_after_reporting, {"x": [0, 1, 2]}, progress=False)
    s.run()
    merged = s.rerun_failed()
    assert sorted(merged.nbflow.curves()["task_id"].unique().tolist()) == [0, 1, 2]


def test_a_metric_named_like_a_parameter_or_a_run_field_is_named_in_curves_as_in_the_frame():
    """x becomes x_out, and a metric named task_id keeps its name while the run's field moves aside."""

    def clash(x):
        nbflow.report(x=x * 2, task_id=1.0)
        return {}

    df = sweep(clash, {"x": [5]}, progress=False)
    assert "nbflow_task_id" in df.columns and df["task_id"].tolist() == [1.0]
    assert df["x_out"].tolist() == [10]
    curves = df.nbflow.curves()
    assert list(curves.columns) == ["x", "nbflow_task_id", "step", "x_out", "task_id"]
    assert curves.values.tolist() == [[5, 0, 0, 10, 1.0]]


def test_a_point_that_reports_nothing_has_no_curve_and_no_extra_columns():
    df = sweep(lambda x: x, {"x": [1, 2]}, progress=False)
    assert list(df.nbflow.curves().columns) == ["x", "task_id", "step"] and df.nbflow.curves().empty
    assert "loss" not in df.columns


def outer(n):
    """A point that runs a sweep of its own, then reports: its report is its own, not lost."""
    inner = sweep(train, grid(lr=[1.0], epochs=[2]), executor="sequential", progress=False)
    nbflow.report(inner_loss=float(inner["loss"].iloc[0]), n=n)
    return {}


def test_a_point_running_a_sweep_of_its_own_still_reports_after_it(executor_name):
    df = sweep(outer, {"n": [7]}, executor=executor_name, progress=False)
    assert df["status"].tolist() == ["ok"]
    assert df["inner_loss"].tolist() == [0.5] and df["n_out"].tolist() == [7]


def test_report_outside_a_sweep_does_nothing_and_warns_once(monkeypatch):
    monkeypatch.setattr(reporting, "_warned_outside", False)
    with pytest.warns(UserWarning, match="outside a sweep"):
        nbflow.report(loss=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nbflow.report(loss=2.0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: nbflow.report(step=1.5, loss=1.0), TypeError, r"step=\.\.\.\) takes an int"),
        (lambda: nbflow.report(step=True, loss=1.0), TypeError, "takes an int"),
        (lambda: nbflow.report(loss="low"), TypeError, r"report\(loss=\.\.\.\) takes a number"),
        (lambda: nbflow.report(loss=None), TypeError, "takes a number"),
        (lambda: nbflow.report(step=3), ValueError, "at least one metric"),
    ],
)
def test_bad_reports_are_an_error_row_naming_the_argument(call, error, match):
    def point(x):
        call()

    df = sweep(point, {"x": [1]}, progress=False)
    assert df["status"].tolist() == ["error"]
    with pytest.raises(error, match=match):
        _inside(call)


def _inside(call):
    with reporting.Reports():
        call()


def test_numpy_metrics_are_stored_as_plain_numbers():
    np = pytest.importorskip("numpy")

    def point(x):
        nbflow.report(step=np.int64(2), loss=np.float32(0.5), count=np.int64(3))
        return {}

    curves = sweep(point, {"x": [1]}, progress=False).nbflow.curves()
    assert curves[["step", "loss", "count"]].values.tolist() == [[2, 0.5, 3]]


def reports_from_a_pool(x):
    import concurrent.futures
    import contextvars

    def work(i):
        nbflow.report(step=i, v=float(i))
        print(f"in pool {i}")

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(contextvars.copy_context().run, work, i) for i in range(3)]:
            future.result()
    return {}


def test_work_handed_to_a_pool_with_the_points_context_reports_and_prints_for_the_point(executor_name):
    """As the README advises for threads a point starts itself: pool.submit(copy_context().run, fn)."""
    df = sweep(reports_from_a_pool, {"x": [1]}, executor=executor_name, progress=False)
    assert sorted(df.nbflow.curves()["step"].tolist()) == [0, 1, 2]
    assert sorted(df.nbflow.log(0).splitlines()) == ["in pool 0", "in pool 1", "in pool 2"]
