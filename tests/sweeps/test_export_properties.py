"""Property: any frame of int/float/bool/str columns, missing values included, survives export and load_results."""

from __future__ import annotations

import importlib.util
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbflow.sweeps.export  # noqa: F401 (registers df.nbflow)
from nbflow.sweeps.export import load_results

FORMATS = [
    ".csv",
    ".json",
    pytest.param(".parquet", marks=pytest.mark.skipif(
        importlib.util.find_spec("pyarrow") is None, reason="needs pyarrow (parquet extra)"
    )),
]  # fmt: skip

_INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_FLOATS = st.floats(allow_nan=False, width=64)
_TEXT = st.text(max_size=12)


def _column(dtype: str, cells: list) -> pd.Series:
    """``cells`` (None where missing) as a column of ``dtype``, missing values in that dtype's own form."""
    if dtype in ("int64", "bool"):
        return pd.Series(cells, dtype=dtype)
    if dtype == "float64":
        return pd.Series([np.nan if v is None else v for v in cells], dtype="float64")
    if dtype == "object":
        return pd.Series(cells, dtype=object)
    return pd.Series(cells, dtype=dtype)  # Int64, Float64, boolean, str, string: None becomes their NA


# dtype -> (strategy of one value, whether it may be missing)
_KINDS = {
    "int64": (_INTS, False),
    "Int64": (_INTS, True),
    "float64": (_FLOATS, True),
    "Float64": (_FLOATS, True),
    "bool": (st.booleans(), False),
    "boolean": (st.booleans(), True),
    "str": (_TEXT, True),
    "string": (_TEXT, True),
    "object": (_TEXT, True),
}

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | _INTS | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """A frame of 0-6 rows and 1-5 columns with random names, dtypes, values and provenance."""
    rows = draw(st.integers(min_value=0, max_value=6))
    names = draw(st.lists(_TEXT, min_size=1, max_size=5, unique=True))
    columns = {}
    for name in names:
        dtype = draw(st.sampled_from(sorted(_KINDS)))
        value, nullable = _KINDS[dtype]
        cell = st.one_of(st.none(), value) if nullable else value
        columns[name] = _column(dtype, draw(st.lists(cell, min_size=rows, max_size=rows)))
    df = pd.DataFrame(columns, columns=names)
    df.attrs["nbflow"] = draw(st.dictionaries(_TEXT, _JSON_VALUES, max_size=4))
    return df


@pytest.mark.parametrize("suffix", FORMATS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(df=frames())
def test_export_round_trip_keeps_values_dtypes_and_provenance(suffix, df):
    """export then load_results gives back the same values, dtypes, column order and attrs['nbflow']."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"results{suffix}"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a dtype that fails to come back warns: make it fail here
            written = df.nbflow.export(path)
            loaded = load_results(written)
    expected = _documented_csv_loss(df) if suffix == ".csv" else df
    assert list(loaded.columns) == list(df.columns)
    assert loaded.dtypes.astype(str).tolist() == df.dtypes.astype(str).tolist()
    pd.testing.assert_frame_equal(loaded, expected, check_exact=True)
    assert loaded.attrs["nbflow"] == df.attrs["nbflow"]


def _documented_csv_loss(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as a CSV can hold it: an empty string in a ``str``/``string`` column reads back as missing."""
    out = df.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.StringDtype):
            out[name] = out[name].mask(out[name] == "")
    return out
