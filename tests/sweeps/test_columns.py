"""The column namespace: a user's axis or output keeps its name, and the run's own fields step aside.

The run's fields are ``status``, ``error``, ``attempts``, ``duration_s`` and ``task_id``. When
an axis or an output takes one of those names, the user's column keeps it and the run's field
moves to ``nbflow_<field>``; ``df.attrs["nbflow"]["columns"]`` says where each field went, and
``best()``, ``failed()``, ``ok()``, ``rerun_failed()``, export and ``load_results`` all follow it.
An output named like an axis is kept beside it as ``<name>_out``.
"""

import pandas as pd
import pytest

from nbflow import Sweep, sweep, to_dataframe
from nbflow.sweeps.export import load_results

FIELDS = ["status", "error", "attempts", "duration_s", "task_id"]


def error_rate(depth):
    if depth == 3:
        raise ValueError("too deep")
    return {"error": depth / 10, "accuracy": 1 - depth / 10}


def test_columns_output_named_error_keeps_its_name_values_and_dtype(executor_name):
    """A metric called `error` stays a float column; the exception text moves to nbflow_error."""
    df = sweep(error_rate, {"depth": [1, 2, 3]}, executor=executor_name, progress=False)
    assert list(df.columns) == ["depth", "error", "accuracy", "status", "nbflow_error", *FIELDS[2:]]
    assert df["error"].dtype == "float64"
    assert df["error"].tolist()[:2] == [0.1, 0.2] and pd.isna(df["error"].iloc[2])
    assert df["nbflow_error"].iloc[2] == "ValueError: too deep"
    assert df.attrs["nbflow"]["columns"]["error"] == "nbflow_error"
    assert df.nbflow.best("error", mode="min")["depth"] == 1
    assert df.nbflow.failed()["depth"].tolist() == [3]


@pytest.mark.parametrize("field", FIELDS)
def test_columns_axis_named_like_a_run_field_keeps_its_values(field):
    """An axis called status/error/attempts/duration_s/task_id keeps every value; the run's field moves aside."""
    values = ["a", "b", "c"] if field in ("status", "error") else [7, 8, 9]

    def target(**point):
        return {"seen": point[field]}

    df = sweep(target, {field: values}, progress=False)
    assert df[field].tolist() == values
    assert df["seen"].tolist() == values
    moved = df.attrs["nbflow"]["columns"][field]
    assert moved == f"nbflow_{field}" and moved in df.columns
    status = df[df.attrs["nbflow"]["columns"]["status"]]
    assert status.tolist() == ["ok"] * 3
    assert len(df.nbflow.ok()) == 3 and df.nbflow.failed().empty


def test_columns_task_id_axis_does_not_lose_the_results():
    """An axis named task_id used to crash after the last point and lose every result."""
    df = sweep(lambda task_id: task_id * 2, {"task_id": [5, 3, 1]}, progress=False)
    assert df["task_id"].tolist() == [5, 3, 1] and df["result"].tolist() == [10, 6, 2]
    assert df["nbflow_task_id"].tolist() == [0, 1, 2]


def test_columns_output_named_like_an_axis_keeps_both():
    """An output that reuses an axis's name does not overwrite the parameter: it becomes <name>_out."""
    df = sweep(lambda x: {"x": x * 10, "y": 1}, {"x": [1, 2]}, progress=False)
    assert df["x"].tolist() == [1, 2] and df["x_out"].tolist() == [10, 20]
    assert df.attrs["nbflow"]["columns"]["outputs"] == {"x": "x_out"}


def test_columns_fallback_names_never_collide_either():
    """A user who also has a column nbflow_status gets the run's field under a name that is still free."""
    df = sweep(lambda status: {"nbflow_status": status}, {"status": ["a", "b"]}, progress=False)
    moved = df.attrs["nbflow"]["columns"]["status"]
    assert moved not in ("status", "nbflow_status") and df[moved].tolist() == ["ok", "ok"]
    assert df["status"].tolist() == ["a", "b"] and df["nbflow_status"].tolist() == ["a", "b"]


def test_columns_without_a_collision_keep_todays_names():
    """Nothing collides: the run's fields keep their plain names, so existing code keeps working."""
    df = sweep(lambda x: {"y": x}, {"x": [1]}, progress=False)
    assert list(df.columns) == ["x", "y", *FIELDS]
    assert df.attrs["nbflow"]["columns"] == {**{f: f for f in FIELDS}, "outputs": {}}


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_columns_moved_fields_survive_export_and_load(tmp_path, suffix):
    """After a round trip through a file, best/failed/ok still find the moved status and error."""
    df = sweep(error_rate, {"depth": [1, 2, 3]}, progress=False)
    loaded = load_results(df.nbflow.export(tmp_path / f"runs{suffix}"))
    assert loaded.attrs["nbflow"]["columns"]["error"] == "nbflow_error"
    assert loaded.nbflow.best("error", mode="min")["depth"] == 1
    assert loaded.nbflow.failed()["depth"].tolist() == [3]
    assert loaded["nbflow_error"].iloc[2] == "ValueError: too deep"


def test_columns_rerun_failed_follows_the_moved_fields():
    """rerun_failed finds the failed points through the moved status and task_id columns."""
    broken = {3}

    def flaky(task_id):
        if task_id in broken:
            raise ValueError("flaky")
        return {"status": "user-status"}

    s = Sweep(flaky, {"task_id": [1, 2, 3]}, progress=False)
    first = s.run()
    assert first["nbflow_status"].tolist() == ["ok", "ok", "error"]
    assert first["status"].tolist()[:2] == ["user-status", "user-status"]
    broken.clear()
    again = s.rerun_failed()
    assert again["nbflow_status"].tolist() == ["ok", "ok", "ok"]
    assert again["task_id"].tolist() == [1, 2, 3] and again["nbflow_task_id"].tolist() == [0, 1, 2]


def test_columns_to_dataframe_state_key_named_status_keeps_its_value():
    """to_dataframe (for a map's reduce): a state key called status is the user's column."""
    from nbflow import State

    df = to_dataframe([State(status="draft", n=1), State(status="final", n=2)])
    assert df["status"].tolist() == ["draft", "final"]
    assert df.attrs["nbflow"]["columns"]["status"] == "nbflow_status"


def test_columns_rerun_failed_whose_points_fail_again_keeps_the_users_column():
    """A point that fails again on rerun stays a failed row; the user's `status` output is not overwritten."""

    def f(x):
        if x == 0:
            raise ValueError("boom")
        return {"status": "converged", "y": x}

    s = Sweep(f, {"x": [0, 1, 2]}, progress=False, executor="sequential")
    s.run()
    again = s.rerun_failed()
    assert again["status"].tolist()[1:] == ["converged", "converged"] and pd.isna(again["status"].iloc[0])
    assert again["nbflow_status"].tolist() == ["error", "ok", "ok"]
    assert again.nbflow.failed()["x"].tolist() == [0] and len(again.nbflow.ok()) == 2
    assert "ValueError: boom" in again.nbflow.log(0)


def test_columns_rerun_failed_that_first_brings_outputs_names_them_as_a_full_run_would():
    """Every point failed at first, then succeeds with an output called status: the frame is as if it ran once."""
    calls = []

    def g(x):
        calls.append(x)
        if len(calls) <= 2:
            raise ValueError("first time")
        return {"status": "converged", "y": x}

    s = Sweep(g, {"x": [1, 2]}, progress=False, executor="sequential")
    s.run()
    again = s.rerun_failed()
    assert again["status"].tolist() == ["converged", "converged"]
    assert again["nbflow_status"].tolist() == ["ok", "ok"] and str(again["y"].dtype) == "int64"
    assert again.nbflow.best("y")["x"] == 2 and len(again.nbflow.ok()) == 2
