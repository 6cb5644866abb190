"""Storing pandas DataFrames, Series, Indexes and scalars as tagged JSON, dtype by dtype.

Separate from `nbflow.persistence.serde` so that module stays about the format
and the standard library. pandas is never imported here: an encoder is only
looked up once pandas is in ``sys.modules``, and decoding imports it on demand.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from nbflow.persistence._serde_base import _REPR, TAG, _Decoder, _Encoder, _Failure, _tz_from_json, _tz_json

# A DataFrame is stored column by column, each column by its dtype, so that int64 stays int64,
# datetime64[us, Europe/Berlin] keeps its unit and zone, and a str column does not come back as
# object. Index and columns are stored as Indexes (RangeIndex, MultiIndex, freq included).


def _enc_pandas_scalar(value: Any, e: _Encoder) -> dict:
    pd = sys.modules["pandas"]
    cls = type(value)
    if cls is pd.Timestamp:
        return _enc_timestamp(value, e)
    if cls is pd.Timedelta:
        return {TAG: "pandas.Timedelta", "v": e.enc(value.to_timedelta64())}
    if cls is pd.Period:
        return {TAG: "pandas.Period", "v": {"ordinal": value.ordinal, "freq": value.freqstr}}
    if cls is pd.Interval:
        return _enc_interval(value, e)
    return {TAG: "pandas.NaT" if value is pd.NaT else "pandas.NA", "v": None}


def _array_json(owner: Any, e: _Encoder) -> dict:
    """The values of a Series or an Index, by dtype."""
    np = sys.modules["numpy"]
    pd = sys.modules["pandas"]
    # owner.dtype, not owner.array.dtype: for numpy-backed data the latter is a wrapper dtype.
    dtype, arr = owner.dtype, owner.array
    if isinstance(dtype, np.dtype):
        return {"kind": "numpy", "values": e.enc(np.asarray(arr))}
    if isinstance(dtype, pd.DatetimeTZDtype):
        utc = np.asarray(arr.tz_convert("UTC").tz_localize(None))
        return {"kind": "datetimetz", "unit": dtype.unit, "tz": _tz_json(dtype.tz, None), "utc": e.enc(utc)}
    if isinstance(dtype, pd.StringDtype):
        na = "nan" if dtype.na_value is not pd.NA else "NA"
        values = [None if x is pd.NA or x != x else x for x in arr]
        return {"kind": "string", "storage": dtype.storage, "na": na, "values": values}
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.asarray(arr.codes)
        categories = _index_json(dtype.categories, e)
        return {"kind": "category", "codes": e.enc(codes), "categories": categories, "ordered": dtype.ordered}
    if isinstance(arr, (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)):
        # Int64, Float64, boolean...: the numbers plus the mask of missing ones.
        mask = np.asarray(arr.isna())
        data = arr.to_numpy(dtype=dtype.numpy_dtype, na_value=False if dtype.kind == "b" else 0)
        return {"kind": "masked", "dtype": str(dtype), "data": e.enc(data), "mask": e.enc(mask)}
    if isinstance(dtype, pd.PeriodDtype):
        return {"kind": "period", "dtype": str(dtype), "ordinals": e.enc(np.asarray(arr.asi8))}
    if isinstance(dtype, pd.IntervalDtype):
        left, right = _array_json(arr.left, e), _array_json(arr.right, e)
        return {"kind": "interval", "dtype": str(dtype), "left": left, "right": right}
    # Anything else (sparse, pyarrow...): its items, rebuilt with pd.array.
    items = [None if x is pd.NA else x for x in arr.astype(object)]
    return {"kind": "other", "dtype": str(dtype), "items": e.seq(items)}


def _array_from_json(v: dict, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas object")
    kind = v["kind"]
    if kind == "numpy":
        return d.dec(v["values"])
    if kind == "datetimetz":
        utc = pd.DatetimeIndex(d.dec(v["utc"])).tz_localize("UTC")
        return utc.tz_convert(_tz_from_json(v["tz"])).array
    if kind == "string":
        na = pd.NA if v["na"] == "NA" else float("nan")
        return pd.array(v["values"], dtype=pd.StringDtype(storage=v["storage"], na_value=na))
    if kind == "category":
        categories = _index_from_json(v["categories"], d)
        dtype = pd.CategoricalDtype(categories, ordered=v["ordered"])
        return pd.Categorical.from_codes(d.dec(v["codes"]), dtype=dtype)
    dtype = pd.api.types.pandas_dtype(v["dtype"])
    if kind == "masked":
        return dtype.construct_array_type()(d.dec(v["data"]), d.dec(v["mask"]))
    if kind == "period":
        return pd.arrays.PeriodArray(d.dec(v["ordinals"]), dtype=dtype)
    if kind == "interval":
        left, right = _array_from_json(v["left"], d), _array_from_json(v["right"], d)
        return pd.arrays.IntervalArray.from_arrays(left, right, closed=dtype.closed, dtype=dtype)
    return pd.array(d.seq(v["items"]), dtype=dtype)


def _index_json(index: Any, e: _Encoder) -> dict:
    pd = sys.modules["pandas"]
    name = e.at("(the index name)", index.name) if not isinstance(index, pd.MultiIndex) else None
    if type(index) is pd.RangeIndex:
        return {"kind": "range", "range": [index.start, index.stop, index.step], "name": name}
    if isinstance(index, pd.MultiIndex):
        return {
            "kind": "multi",
            "levels": [_index_json(level, e) for level in index.levels],
            "codes": [e.enc(c) for c in index.codes],
            "names": e.at("(the index names)", list(index.names)),
        }
    out = {"kind": "index", "array": _array_json(index, e), "name": name}
    freq = getattr(index, "freqstr", None)
    if freq is not None and not isinstance(index, pd.PeriodIndex):
        out["freq"] = freq
    return out


def _index_from_json(v: dict, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas object")
    kind = v["kind"]
    if kind == "range":
        return pd.RangeIndex(*v["range"], name=d.dec(v["name"]))
    if kind == "multi":
        levels = [_index_from_json(level, d) for level in v["levels"]]
        codes = [d.dec(c) for c in v["codes"]]
        return pd.MultiIndex(levels=levels, codes=codes, names=d.dec(v["names"]))
    arr = _array_from_json(v["array"], d)
    name = d.dec(v["name"])
    freq = v.get("freq")
    if freq is not None:
        cls = pd.TimedeltaIndex if arr.dtype.kind == "m" else pd.DatetimeIndex
        return cls(arr, freq=freq, name=name)
    # dtype= keeps an object array of strings object (pandas 3 would infer str).
    return pd.Index(arr, dtype=arr.dtype, name=name)


def _enc_series(value: Any, e: _Encoder) -> dict:
    out = {
        "name": e.at("(the series name)", value.name),
        "index": _index_json(value.index, e),
        "values": _array_json(value, e),
    }
    if value.attrs:
        out["attrs"] = e.at("(attrs)", dict(value.attrs))
    return {TAG: "pandas.Series", "v": out}


def _dec_series(v: Any, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas Series")
    values = _array_from_json(v["values"], d)
    index = _index_from_json(v["index"], d)
    series = pd.Series(values, index=index, dtype=values.dtype, name=d.dec(v["name"]))
    if "attrs" in v:
        series.attrs = d.dec(v["attrs"])
    return series


def _enc_dataframe(value: Any, e: _Encoder) -> dict:
    columns = []
    for i in range(value.shape[1]):
        try:
            columns.append(_array_json(value.iloc[:, i], e))
        except _Failure as failure:
            failure.segments.append(("other", f"column {_REPR.repr(value.columns[i])}"))
            raise
    out = {"index": _index_json(value.index, e), "columns": _index_json(value.columns, e), "data": columns}
    if value.attrs:
        out["attrs"] = e.at("(attrs)", dict(value.attrs))
    return {TAG: "pandas.DataFrame", "v": out}


def _dec_dataframe(v: Any, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas DataFrame")
    index = _index_from_json(v["index"], d)
    arrays = [_array_from_json(column, d) for column in v["data"]]
    # Positions as labels, and the real labels and index set afterwards: column labels may repeat,
    # and an index with repeated labels must not take part in alignment.
    rows = pd.RangeIndex(len(index))
    frame = pd.DataFrame(
        {i: pd.Series(a, index=rows, dtype=a.dtype) for i, a in enumerate(arrays)}, index=rows
    )
    frame.index = index
    frame.columns = _index_from_json(v["columns"], d)
    if "attrs" in v:
        frame.attrs = d.dec(v["attrs"])
    return frame


def _enc_timestamp(value: Any, e: _Encoder) -> dict:
    utc = value.tz_convert("UTC").tz_localize(None) if value.tzinfo is not None else value
    return {
        TAG: "pandas.Timestamp",
        "v": {"utc": e.enc(utc.to_datetime64()), "tz": _tz_json(value.tzinfo, None)},
    }


def _dec_timestamp(v: Any, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas Timestamp")
    ts = pd.Timestamp(d.dec(v["utc"]))
    tz = _tz_from_json(v["tz"])
    return ts if tz is None else ts.tz_localize("UTC").tz_convert(tz)


def _enc_interval(value: Any, e: _Encoder) -> dict:
    bounds = [e.at("(left)", value.left), e.at("(right)", value.right)]
    return {TAG: "pandas.Interval", "v": {"bounds": bounds, "closed": value.closed}}


def _dec_interval(v: Any, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas Interval")
    return pd.Interval(*d.seq(v["bounds"]), closed=v["closed"])


def _dec_timedelta(v: Any, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas Timedelta")
    return pd.Timedelta(d.dec(v))


_PANDAS_DECODERS: dict[str, Callable[[Any, _Decoder], Any]] = {
    "pandas.DataFrame": _dec_dataframe,
    "pandas.Series": _dec_series,
    "pandas.Index": lambda v, d: _index_from_json(v, d),
    "pandas.Timestamp": _dec_timestamp,
    "pandas.Timedelta": _dec_timedelta,
    "pandas.Period": lambda v, d: d.require("pandas", "a pandas Period").Period(**v),
    "pandas.Interval": _dec_interval,
    "pandas.NaT": lambda v, d: d.require("pandas", "pandas.NaT").NaT,
    "pandas.NA": lambda v, d: d.require("pandas", "pandas.NA").NA,
}

# By type family (see nbflow.fingerprint.families).
_PANDAS_ENCODERS: dict[str, Callable[[Any, _Encoder], Any]] = {
    "dataframe": _enc_dataframe,
    "series": _enc_series,
    "index": lambda value, e: {TAG: "pandas.Index", "v": _index_json(value, e)},
    "pandas_scalar": _enc_pandas_scalar,
}
