"""df.nbflow: export to CSV, JSON and parquet with provenance, load_results, and best/failed/ok."""

from __future__ import annotations

import json
import os
import stat
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from nbflow.errors import (
    ExportError,
    MissingDependencyError,
    NbflowError,
    ResultsColumnError,
    ResultsError,
    ResultsExistError,
    ResultsNotFoundError,
    SerializationError,
)
from nbflow.sweeps.export import load_results, sidecar_path

FORMATS = [
    ".csv",
    ".json",
    pytest.param(".parquet", marks=pytest.mark.skipif(
        __import__("importlib.util").util.find_spec("pyarrow") is None, reason="needs pyarrow (parquet extra)"
    )),
]  # fmt: skip


def _results() -> pd.DataFrame:
    """A frame shaped like a sweep's: parameters, outputs, then the bookkeeping columns."""
    df = pd.DataFrame(
        {
            "lr": [0.1, 0.01, 0.001, 1.0],
            "optimizer": ["adam", "sgd", "adam", None],
            "use_bn": [True, False, True, False],
            "acc": [0.81, 0.93, np.nan, 0.5],
            "epochs": [3, 5, 0, 7],
            "finished_at": pd.to_datetime(
                ["2024-05-01 12:00:00.5", "2024-05-01 12:01:00", None, "2024-05-01 12:03:00"],
                format="ISO8601",
            ),
            "note": pd.Series(["fine", None, "diverged", "007"], dtype=object),
            "status": ["ok", "cached", "error", "cancelled"],
            "error": [None, None, "ValueError: lr too small", None],
            "attempts": [1, 0, 3, 0],
            "duration_s": [1.25, 0.0, 0.5, 0.0],
            "task_id": [0, 1, 2, 3],
        }
    )
    df.attrs["nbflow"] = {
        "target_name": "train",
        "axes": {"lr": [0.1, 0.01, 0.001, 1.0], "shape": [(3, 4)]},
        "started_at": "2024-05-01T12:00:00+00:00",
        "git": {"commit": "abc123", "dirty": False, "branch": None},
    }
    return df


def _load_quietly(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_results(path)


# -- round trips ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", FORMATS)
def test_export_round_trips_values_order_dtypes_and_provenance(tmp_path, ext):
    """A sweep-shaped frame comes back equal: values, column order, dtypes and attrs['nbflow']."""
    df = _results()
    back = _load_quietly(df.nbflow.export(tmp_path / f"runs{ext}"))
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert list(back.columns) == list(df.columns)
    assert back.dtypes.to_dict() == df.dtypes.to_dict()
    assert back.attrs["nbflow"] == df.attrs["nbflow"]
    assert back.nbflow.provenance["axes"]["shape"] == [(3, 4)]


@pytest.mark.parametrize("ext", FORMATS)
def test_export_round_trips_datetime_bool_and_text_columns(tmp_path, ext):
    """datetime64 (ns and us, with a zone), bool, str with missing values and object with None keep their dtypes."""
    df = pd.DataFrame(
        {
            "ns": pd.to_datetime(["2024-01-01 00:00:00.000000001", None], format="ISO8601").as_unit("ns"),
            "us": pd.to_datetime(["2024-01-01 00:00:01.5", None], format="ISO8601").as_unit("us"),
            "berlin": pd.to_datetime(["2024-01-01", "2024-07-01 12:00"], format="ISO8601").tz_localize(
                "Europe/Berlin"
            ),
            "flag": [True, False],
            "text": pd.Series(["a", None], dtype="str"),
            "obj": pd.Series(["a", None], dtype=object),
            "numeric_looking": pd.Series(["007", "1e3"], dtype=object),
        }
    )
    back = _load_quietly(df.nbflow.export(tmp_path / f"t{ext}"))
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert back["obj"].tolist() == ["a", None]
    assert back["numeric_looking"].tolist() == ["007", "1e3"]


@pytest.mark.parametrize("ext", FORMATS)
def test_export_round_trips_extension_dtypes(tmp_path, ext):
    """Nullable ints/bools/floats, string storage, categoricals, timedeltas and non-finite floats survive."""
    df = pd.DataFrame(
        {
            "I": pd.array([1, None, 3], dtype="Int64"),
            "B": pd.array([True, None, False], dtype="boolean"),
            "F": pd.array([0.5, None, 1.5], dtype="Float64"),
            "S": pd.array(["a", None, "c"], dtype="string[python]"),
            "cat": pd.Categorical(["x", None, "y"], categories=["y", "x"], ordered=True),
            "int_cat": pd.Categorical([1, 2, None]),
            "td": pd.to_timedelta(["1.5s", None, "1D"]),
            "f": [float("inf"), float("-inf"), float("nan")],
        }
    )
    back = _load_quietly(df.nbflow.export(tmp_path / f"x{ext}"))
    pd.testing.assert_frame_equal(back, df, check_exact=True)


@pytest.mark.parametrize("ext", FORMATS)
def test_export_round_trips_object_cells_exactly(tmp_path, ext):
    """Object cells that are not plain text (tuples, dicts, nan, empty strings) come back as they were."""
    df = pd.DataFrame(
        {"out": pd.Series([(1, 2), {"k": [1.5]}, float("nan"), "", None], dtype=object), "i": range(5)}
    )
    back = _load_quietly(df.nbflow.export(tmp_path / f"o{ext}"))
    cells = back["out"].tolist()
    assert cells[:2] == [(1, 2), {"k": [1.5]}]
    assert cells[2] != cells[2]  # nan
    assert cells[3:] == ["", None]
    assert back["out"].dtype == object


def _train(lr, opt):
    if lr > 0.5:
        raise ValueError("lr too big")
    return {"acc": 1 - lr, "tag": opt.upper(), "shape": (2, 3)}


@pytest.mark.parametrize("ext", FORMATS)
def test_export_round_trips_a_real_sweep(tmp_path, ext):
    """The frame a Sweep returns, error rows and collected provenance included, loads back equal."""
    from nbflow import Sweep, grid

    df = Sweep(_train, grid(lr=[0.1, 1.0], opt=["adam", "sgd"]), executor="sequential", progress=None).run()
    back = _load_quietly(df.nbflow.export(tmp_path / f"sweep{ext}"))
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert back.attrs["nbflow"] == df.attrs["nbflow"]
    assert back.nbflow.provenance["target_name"] == df.nbflow.provenance["target_name"]
    assert back.nbflow.failed()["lr"].tolist() == [1.0, 1.0]


def test_export_csv_keeps_text_columns_readable(tmp_path):
    """In the CSV, text and numbers are plain; only non-text object cells are serde JSON."""
    df = pd.DataFrame(
        {"name": pd.Series(["adam", None], dtype=object), "shape": [(3, 4), None], "lr": [0.1, 0.2]}
    )
    out = df.nbflow.export(tmp_path / "r.csv")
    lines = out.read_text().splitlines()
    assert lines[0] == "name,shape,lr"
    assert lines[1].startswith("adam,") and lines[1].endswith(",0.1")
    assert '""__nbflow__"":""tuple""' in lines[1]
    assert lines[2] == ",,0.2"


@pytest.mark.parametrize("ext", FORMATS)
def test_export_drops_an_unnamed_index(tmp_path, ext):
    """A filtered frame's index (labels 1, 3) is not stored: it loads with a fresh RangeIndex."""
    df = _results().iloc[[1, 3]]
    back = _load_quietly(df.nbflow.export(tmp_path / f"f{ext}"))
    assert list(back.index) == [0, 1]
    assert back["task_id"].tolist() == [1, 3]


@pytest.mark.parametrize("ext", FORMATS)
def test_export_turns_named_index_levels_into_columns(tmp_path, ext):
    """Named index levels become leading columns, as df.reset_index() would make them."""
    df = _results().set_index(["lr", "optimizer"])
    back = _load_quietly(df.nbflow.export(tmp_path / f"n{ext}"))
    pd.testing.assert_frame_equal(back, df.reset_index(), check_exact=True)


def test_export_json_layout_has_provenance_dtypes_and_records(tmp_path):
    """The JSON file is one object: format, version, nbflow, columns, dtypes and one record per row."""
    out = _results().nbflow.export(tmp_path / "r.json")
    payload = json.loads(out.read_text())
    assert list(payload) == ["format", "version", "nbflow", "columns", "dtypes", "data"]
    assert payload["nbflow"]["target_name"] == "train"
    assert payload["dtypes"]["epochs"] == "int64"
    assert payload["data"][0]["finished_at"] == "2024-05-01T12:00:00.500000"
    assert payload["data"][2]["acc"] is None


def test_export_parquet_stores_provenance_in_key_value_metadata(tmp_path):
    """The parquet file's key-value metadata holds the provenance as JSON under 'nbflow'."""
    pq = pytest.importorskip("pyarrow.parquet")
    out = _results().nbflow.export(tmp_path / "r.parquet")
    meta = pq.read_schema(out).metadata
    assert json.loads(meta[b"nbflow"])["git"] == {"commit": "abc123", "dirty": False, "branch": None}
    assert b"nbflow.dtypes" in meta


# -- paths, files and permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("ext", FORMATS)
def test_export_writes_only_the_target_and_its_sidecar(tmp_path, ext):
    """Nothing but the file (and a CSV's sidecar) is left in the directory: no temp files, no extras."""
    out = _results().nbflow.export(tmp_path / "deep" / "er" / f"runs{ext}")
    expected = [f"runs{ext}"] + ([f"runs{ext}.nbflow.json"] if ext == ".csv" else [])
    assert sorted(os.listdir(tmp_path / "deep" / "er")) == sorted(expected)
    assert os.listdir(tmp_path) == ["deep"]
    assert out == (tmp_path / "deep" / "er" / f"runs{ext}").resolve()


@pytest.mark.parametrize("ext", FORMATS)
def test_export_new_files_are_owner_only(tmp_path, ext):
    """A new export and its sidecar get mode 0o600."""
    out = _results().nbflow.export(tmp_path / f"runs{ext}")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    if ext == ".csv":
        assert stat.S_IMODE(sidecar_path(out).stat().st_mode) == 0o600


def test_export_keeps_the_mode_of_an_existing_file(tmp_path):
    """Overwriting a file keeps the permissions it had."""
    target = tmp_path / "runs.json"
    target.write_text("old")
    target.chmod(0o644)
    _results().nbflow.export(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert json.loads(target.read_text())["format"] == "nbflow-results"


def test_export_overwrite_false_refuses_an_existing_file(tmp_path):
    """overwrite=False leaves an existing file alone and says how to replace it."""
    target = tmp_path / "runs.csv"
    target.write_text("keep me")
    with pytest.raises(ResultsExistError) as info:
        _results().nbflow.export(target, overwrite=False)
    assert isinstance(info.value, FileExistsError)
    assert str(target) in str(info.value) and "overwrite=True" in str(info.value)
    assert target.read_text() == "keep me"
    assert os.listdir(tmp_path) == ["runs.csv"]


def test_export_unknown_extension_lists_the_supported_ones(tmp_path):
    """An .xlsx path is refused with the extensions that work, and nothing is written."""
    with pytest.raises(ExportError) as info:
        _results().nbflow.export(tmp_path / "runs.xlsx")
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "'.xlsx' is not a supported format" in message
    assert ".csv, .json, .parquet" in message
    assert os.listdir(tmp_path) == []


def test_export_without_extension_says_so(tmp_path):
    """A path with no extension is refused, naming the supported ones."""
    with pytest.raises(
        ExportError, match=r"no extension is not a supported format.*\.csv, \.json, \.parquet"
    ):
        _results().nbflow.export(tmp_path / "runs")


def test_export_refuses_a_directory(tmp_path):
    """A path that is an existing directory (even named like a file) is refused; it stays a directory."""
    folder = tmp_path / "runs.csv"
    folder.mkdir()
    with pytest.raises(ExportError) as info:
        _results().nbflow.export(folder)
    assert f"{folder}: it is a directory" in str(info.value)
    assert folder.is_dir() and os.listdir(folder) == []
    assert os.listdir(tmp_path) == ["runs.csv"]


def test_export_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    """Without pyarrow, parquet export and load say to pip install 'nbflow[parquet]' and write nothing."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError) as info:
        _results().nbflow.export(tmp_path / "sub" / "runs.parquet")
    assert isinstance(info.value, ImportError)
    assert "pip install 'nbflow[parquet]'" in str(info.value)
    assert "runs.parquet" in str(info.value)
    assert os.listdir(tmp_path) == []
    (tmp_path / "other.parquet").write_bytes(b"PAR1")
    with pytest.raises(MissingDependencyError, match=r"pip install 'nbflow\[parquet\]'"):
        load_results(tmp_path / "other.parquet")


def test_export_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    """A write that fails halfway keeps the previous file intact and cleans up its temporary file."""
    pq = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "runs.parquet"
    _results().nbflow.export(target)
    before = target.read_bytes()

    def half_write(table, where, **kwargs):
        where.write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        _results().iloc[:1].nbflow.export(target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["runs.parquet"]


def test_export_unstorable_cell_names_the_column(tmp_path):
    """An object cell serde cannot store fails before anything is written, naming the column."""
    df = pd.DataFrame({"model": [object()], "x": [1]})
    with pytest.raises(SerializationError, match="column 'model'"):
        df.nbflow.export(tmp_path / "r.json")
    assert os.listdir(tmp_path) == []


def test_export_refuses_non_string_and_repeated_column_labels(tmp_path):
    """Column labels must be unique strings; the message names the culprits and the fix."""
    with pytest.raises(ExportError, match=r"\[0, 1\] are not.*df.columns = df.columns.map\(str\)"):
        pd.DataFrame([[1, 2]]).nbflow.export(tmp_path / "r.csv")
    with pytest.raises(ExportError, match=r"the columns \['a'\] appear more than once"):
        pd.DataFrame([[1, 2]], columns=["a", "a"]).nbflow.export(tmp_path / "r.csv")
    assert os.listdir(tmp_path) == []


# -- loading ----------------------------------------------------------------------------------------------


def test_load_results_missing_file_names_the_path(tmp_path):
    """A missing file is a FileNotFoundError that names the path."""
    missing = tmp_path / "nope.csv"
    with pytest.raises(ResultsNotFoundError) as info:
        load_results(missing)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, NbflowError)
    assert f"No results file at {missing}" in str(info.value)


def test_load_results_csv_without_sidecar_warns_and_has_empty_provenance(tmp_path):
    """A CSV with no sidecar loads with pandas' type guesses, {} provenance and a warning naming the sidecar."""
    path = tmp_path / "plain.csv"
    path.write_text("lr,acc\n0.1,0.9\n0.2,0.8\n")
    with pytest.warns(UserWarning, match=r"plain.csv has no sidecar plain.csv.nbflow.json"):
        df = load_results(path)
    assert df["acc"].tolist() == [0.9, 0.8]
    assert df.attrs["nbflow"] == {}
    assert df.nbflow.provenance == {}


def test_load_results_warns_when_the_csv_changed_after_export(tmp_path):
    """Editing the CSV after export is noticed (checksum) but the dtypes are still restored."""
    out = pd.DataFrame({"lr": [0.1, 0.2], "n": [1, 2]}).nbflow.export(tmp_path / "r.csv")
    out.write_text(out.read_text().replace("0.2,2", "0.3,4"))
    with pytest.warns(UserWarning, match="changed after it was exported"):
        back = load_results(out)
    assert back["n"].tolist() == [1, 4] and back["n"].dtype == "int64"


def test_load_results_warns_about_a_column_that_no_longer_converts(tmp_path):
    """A hand-edited value that fits no longer its dtype leaves that column as text, with a warning."""
    out = pd.DataFrame({"n": [1, 2]}).nbflow.export(tmp_path / "r.csv")
    out.write_text("n\n1\nlots\n")
    with pytest.warns(UserWarning) as caught:
        back = load_results(out)
    messages = [str(w.message) for w in caught]
    assert any("Column 'n'" in m and "int64" in m and "left as read" in m for m in messages)
    assert back["n"].tolist() == ["1", "lots"]
    # The warning points at the caller, not at nbflow's internals.
    assert all(w.filename == __file__ for w in caught)


def test_load_results_refuses_json_nbflow_did_not_write(tmp_path):
    """A pandas to_json file is refused with a pointer to pandas.read_json."""
    path = tmp_path / "pandas.json"
    pd.DataFrame({"a": [1]}).to_json(path)
    with pytest.raises(ExportError, match=r"not an nbflow results file.*pandas.read_json"):
        load_results(path)


def test_load_results_refuses_a_directory_and_unknown_extension(tmp_path):
    """load_results names a directory or an unsupported extension as the problem."""
    (tmp_path / "d.json").mkdir()
    with pytest.raises(ExportError, match="it is a directory"):
        load_results(tmp_path / "d.json")
    with pytest.raises(ExportError, match=r"'.txt' is not a supported format"):
        load_results(tmp_path / "r.txt")


# -- best, failed, ok, provenance ----------------------------------------------------------------------


def test_best_picks_the_highest_among_ok_and_cached_rows():
    """best() ranks only ok/cached rows: a higher value on a cancelled row does not count."""
    df = _results()
    df.loc[3, "acc"] = 0.99  # status 'cancelled'
    row = df.nbflow.best("acc")
    assert isinstance(row, pd.Series)
    assert row["lr"] == 0.01 and row.name == 1


def test_best_min_mode_and_ties_take_the_first_row():
    """mode='min' picks the lowest value; on a tie the first row wins."""
    df = pd.DataFrame({"loss": [0.3, 0.1, 0.1], "k": ["a", "b", "c"], "status": ["ok", "ok", "cached"]})
    assert df.nbflow.best("loss", mode="min")["k"] == "b"
    assert df.nbflow.best("loss")["k"] == "a"


def test_best_without_status_uses_every_row_and_skips_missing_values():
    """Without a status column every row counts; rows with no metric value never do."""
    df = pd.DataFrame({"acc": [np.nan, 0.5, 0.7], "k": [1, 2, 3]}, index=[5, 5, 5])
    row = df.nbflow.best("acc")
    assert row["k"] == 3


def test_best_unknown_metric_lists_the_numeric_columns():
    """An unknown metric is a KeyError naming it and listing the numeric columns."""
    with pytest.raises(ResultsColumnError) as info:
        _results().nbflow.best("accuracy")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == (
        "No column 'accuracy' in these results. Numeric columns: "
        "['lr', 'acc', 'epochs', 'attempts', 'duration_s', 'task_id']. Pass one of them to best()."
    )


def test_best_non_numeric_metric_is_refused():
    """A text column cannot be ranked; the message names its dtype and the numeric columns."""
    with pytest.raises(
        ResultsError, match=r"Column 'optimizer' holds .* not numbers.*Numeric columns: \['lr'"
    ):
        _results().nbflow.best("optimizer")


def test_best_bad_mode_is_refused():
    """mode must be 'max' or 'min'."""
    with pytest.raises(ResultsError) as info:
        _results().nbflow.best("acc", mode="maximum")
    assert isinstance(info.value, ValueError)
    assert str(info.value) == "best(mode=...) takes 'max' or 'min', not 'maximum'."


def test_best_with_no_eligible_row_says_why():
    """With no ok/cached row, the message counts the statuses and points at failed()."""
    df = pd.DataFrame({"acc": [0.5, 0.6], "status": ["error", "cancelled"]})
    with pytest.raises(ResultsError) as info:
        df.nbflow.best("acc")
    assert str(info.value) == (
        "No row to take the best 'acc' from: none of the 2 rows has status 'ok' or 'cached' "
        "(1 error, 1 cancelled). See df.nbflow.failed() for what went wrong."
    )


def test_best_with_only_missing_metric_values_says_so():
    """ok rows without a value for the metric are reported as such."""
    df = pd.DataFrame({"acc": [np.nan, np.nan], "status": ["ok", "cached"]})
    with pytest.raises(
        ResultsError, match=r"the 2 rows with status 'ok' or 'cached' have no value for 'acc'"
    ):
        df.nbflow.best("acc")


def test_failed_returns_the_error_rows_with_provenance():
    """failed() keeps the error rows, their index and the frame's attrs."""
    df = _results()
    failed = df.nbflow.failed()
    assert failed.index.tolist() == [2]
    assert failed["error"].tolist() == ["ValueError: lr too small"]
    assert failed.nbflow.provenance == df.attrs["nbflow"]


def test_failed_without_errors_is_an_empty_frame_with_the_same_columns():
    """No error rows gives an empty frame with every column."""
    df = _results()[lambda d: d["status"] != "error"]
    failed = df.nbflow.failed()
    assert failed.empty and list(failed.columns) == list(df.columns)


def test_failed_and_ok_without_status_column_are_refused():
    """failed() and ok() need a status column; the message lists the columns there are."""
    df = pd.DataFrame({"lr": [0.1]})
    with pytest.raises(ResultsError) as info:
        df.nbflow.failed()
    assert str(info.value).startswith(
        "df.nbflow.failed() needs a 'status' column, and these results have none (columns: ['lr'])."
    )
    with pytest.raises(ResultsError, match=r"df.nbflow.ok\(\) needs a 'status' column"):
        df.nbflow.ok()


def test_ok_returns_the_ok_and_cached_rows():
    """ok() keeps rows with status ok or cached, in order."""
    assert _results().nbflow.ok()["status"].tolist() == ["ok", "cached"]


def test_provenance_is_attrs_nbflow_or_empty():
    """The provenance property reads attrs['nbflow'], and is {} on a frame without it."""
    assert pd.DataFrame({"a": [1]}).nbflow.provenance == {}
    assert _results().nbflow.provenance["target_name"] == "train"
