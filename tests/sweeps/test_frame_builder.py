"""The frame is always built, and its dtypes depend on the values alone, never on timing.

Rows reach the frame builder in completion order, in chunks, while a live table may read it
mid-run. Whatever mix of types arrives, in whatever order, with whatever reads in between, the
final frame holds every row, and each column's dtype is the one the plain-Python model below
gives for its values in task order:

- only whole numbers: ``int64``, or nullable ``Int64`` when some row has no value;
- numbers with a float among them: ``float64`` (a missing value is NaN);
- only booleans: ``bool``, or nullable ``boolean`` with gaps;
- anything else (text, lists, mixed kinds, objects): what pandas itself makes of the column,
  ``object`` when it cannot make more of it.
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbflow import ResultTable, sweep

INT64 = (-(2**63), 2**63 - 1)


def _kind(v):
    if v is None:
        return None
    if isinstance(v, (np.timedelta64, np.datetime64)):
        return "other"
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, np.integer)):
        return "int" if INT64[0] <= int(v) <= INT64[1] else "other"
    if isinstance(v, (float, np.floating)):
        return "float"
    return "other"


def model_column(values):
    """The column a plain-Python reading of the rules gives for ``values`` (in task order)."""
    kinds = {_kind(v) for v in values} - {None}
    missing = any(v is None for v in values)
    if kinds == {"int"}:
        return pd.Series(
            [None if v is None else int(v) for v in values], dtype="Int64" if missing else "int64"
        )
    if kinds and kinds <= {"int", "float"}:
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if kinds == {"bool"}:
        return pd.Series(
            [None if v is None else bool(v) for v in values], dtype="boolean" if missing else "bool"
        )
    try:
        return pd.Series(list(values))
    except Exception:
        return pd.Series(list(values), dtype=object)


class Unprintable:
    def __repr__(self):
        return "Unprintable()"

    def __eq__(self, other):
        return isinstance(other, Unprintable)

    __hash__ = object.__hash__


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.integers(0, 3), max_size=3),
    st.just(Unprintable()),
    st.builds(np.int32, st.integers(-1000, 1000)),
    st.builds(np.float32, st.floats(-1e3, 1e3, width=32)),
    st.builds(np.uint64, st.integers(0, 2**64 - 1)),
    st.builds(lambda n: np.timedelta64(n, "s"), st.integers(-1000, 1000)),
)


def _same(actual: pd.Series, expected: pd.Series) -> None:
    assert str(actual.dtype) == str(expected.dtype), (list(actual), list(expected))
    for a, e in zip(actual.tolist(), expected.tolist(), strict=True):
        if isinstance(e, float) and math.isnan(e):
            assert isinstance(a, float) and math.isnan(a)
        elif e is pd.NA or e is None or e is pd.NaT:
            assert a is e or (a is None and e is None) or pd.isna(a)
        else:
            assert a == e and type(a) is type(e), (a, e)


@settings(max_examples=300, deadline=None)
@given(
    columns=st.lists(st.lists(VALUES, min_size=1, max_size=12), min_size=1, max_size=3),
    chunk=st.integers(1, 5),
    reads=st.lists(st.integers(0, 12), max_size=4),
    order_seed=st.randoms(use_true_random=False),
)
def test_frame_builder_matches_the_model_whatever_the_order_chunks_and_reads(
    columns, chunk, reads, order_seed
):
    """Random values, completion orders, chunk sizes and mid-run reads: every row, and the model's dtypes."""
    n = max(len(c) for c in columns)
    values = {f"out{i}": (c * n)[:n] for i, c in enumerate(columns)}
    table = ResultTable(["p"], chunk=chunk)
    order = list(range(n))
    order_seed.shuffle(order)
    for added, i in enumerate(order):
        table.add({"p": i}, {k: v[i] for k, v in values.items()}, status="ok", task_id=i)
        if added in reads:
            table.frame()  # what the live table does while the sweep runs
    frame = table.frame()
    assert frame["task_id"].tolist() == list(range(n))
    for name, column in values.items():
        _same(frame[name], model_column(column))


@settings(max_examples=100, deadline=None)
@given(
    outputs=st.lists(st.one_of(st.none(), VALUES), min_size=1, max_size=10), failed=st.sets(st.integers(0, 9))
)
def test_frame_builder_failed_rows_leave_gaps_that_follow_the_model(outputs, failed):
    """A failed point contributes no output: its gap is a missing value of the column's kind."""
    table = ResultTable(["p"], chunk=3)
    for i, value in enumerate(outputs):
        if i in failed:
            table.add({"p": i}, {}, status="error", error="E: x", task_id=i)
        else:
            table.add({"p": i}, {"m": value}, status="ok", task_id=i)
    frame = table.frame()
    expected = [None if i in failed else v for i, v in enumerate(outputs)]
    if any(i not in failed for i in range(len(outputs))):
        _same(frame["m"], model_column(expected))
    assert len(frame) == len(outputs)


def test_frame_builder_number_then_list_is_an_object_column():
    """A column whose first value is a number and a later one a list is built (object), not a crash."""
    table = ResultTable(["p"], chunk=2)
    for i, v in enumerate([1, 2, [1, 2], 3.5]):
        table.add({"p": i}, {"v": v}, status="ok", task_id=i)
    frame = table.frame()
    assert frame["v"].dtype == object and frame["v"].tolist() == [1, 2, [1, 2], 3.5]


def test_frame_builder_lists_of_equal_length_stay_one_value_per_row():
    """Outputs that are lists of one length are kept as lists, not read as a second dimension."""
    table = ResultTable(["p"], chunk=2)
    for i in range(3):
        table.add({"p": i}, {"v": [i, i + 1]}, status="ok", task_id=i)
    assert table.frame()["v"].tolist() == [[0, 1], [1, 2], [2, 3]]


def test_frame_builder_odd_axis_values_build():
    """Axes like [nan, None, object(), [1, 2]] give a frame with every row."""
    marker = object()
    df = sweep(lambda a: 1, {"a": [math.nan, None, marker, [1, 2]]}, progress=False)
    assert len(df) == 4 and df["a"].tolist()[2] is marker and df["a"].tolist()[3] == [1, 2]


def test_frame_builder_mixed_outputs_through_a_sweep_keep_every_result(executor_name):
    """Outputs whose type changes from point to point, on every executor: all rows, nothing lost."""
    outputs = {0: 1, 1: [1, 2], 2: "text", 3: None, 4: {"k": 1}, 5: 2.5}
    df = sweep(lambda i: {"v": outputs[i]}, {"i": list(outputs)}, executor=executor_name, progress=False)
    assert df["v"].tolist() == list(outputs.values())
    assert df["status"].tolist() == ["ok"] * 6


def test_frame_builder_whole_numbers_with_a_failed_row_stay_integers():
    """A whole-number output with a failed point is nullable Int64, not float."""

    def f(x):
        if x == 2:
            raise ValueError("no")
        return {"n": x * 10}

    df = sweep(f, {"x": [1, 2, 3]}, progress=False)
    assert (
        str(df["n"].dtype) == "Int64"
        and df["n"].tolist()[0] == 10
        and df["n"].isna().tolist() == [False, True, False]
    )


@pytest.mark.parametrize("live", [True, False])
def test_frame_builder_dtypes_same_with_and_without_live_reads(live, monkeypatch):
    """The first finished points failing, with live reads between rows or not: float metric columns."""
    import nbflow.notebook.live as live_module

    reads = []
    monkeypatch.setattr(live_module, "in_notebook", lambda: live)

    class Live:
        def __init__(self, frame, **kwargs):
            self.frame = frame

        def show(self):
            pass

        def refresh(self, force=False):
            reads.append(self.frame().dtypes.to_dict())

        def close(self, summary):
            pass

    monkeypatch.setattr(live_module, "LiveTable", Live)

    def f(x):
        if x < 3:
            raise ValueError("early failure")
        return {"loss": x / 10}

    df = sweep(f, {"x": list(range(8))}, executor="sequential", progress=False)
    assert df["loss"].dtype == "float64"
    assert df.nbflow.best("loss", mode="min")["x"] == 3
    assert bool(reads) == live
