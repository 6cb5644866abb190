"""Each column's dtype spec: what a result file stores so that a column reads back with its dtype.

``str(dtype)`` for numpy and most extension dtypes; a dict for the ones whose
string loses something (categoricals keep their categories and order, strings
their storage and missing-value flavour); ``"object"`` for object columns kept
as plain values; ``{"kind": "json"}`` for object columns whose cells are stored
as serde JSON text. A column that will not convert back (a hand-edited file) is
left as read, with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nbflow.errors import ExportError
from nbflow.persistence.serde import dumps, from_json, loads, to_json
from nbflow.sweeps.files import warn_user

__all__ = ["without_index", "missing", "is_object", "spec_of", "text_cells", "restore_all"]


def without_index(df: pd.DataFrame) -> pd.DataFrame:
    if any(name is not None for name in df.index.names):
        try:
            frame = df.reset_index()
        except ValueError as exc:
            msg = f"Cannot export: the index level names {list(df.index.names)} clash with columns ({exc}). Rename the index (df.rename_axis(...)) or drop it with df.reset_index(drop=True)."
            raise ExportError(msg) from None
    else:
        frame = df.reset_index(drop=True)
    labels = list(frame.columns)
    odd = [c for c in labels if not isinstance(c, str)]
    if odd:
        msg = f"Cannot export: column labels must be strings, and {odd[:5]!r} are not. Rename them, e.g. df.columns = df.columns.map(str)."
        raise ExportError(msg)
    repeated = sorted({c for c in labels if labels.count(c) > 1})
    if repeated:
        msg = f"Cannot export: the columns {repeated} appear more than once. Rename the duplicates."
        raise ExportError(msg)
    return frame


def missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def is_text(column: pd.Series, allow_empty: bool) -> bool:
    """Only strings and missing values: stored as readable text rather than serde JSON."""
    return all((type(v) is str and (allow_empty or v)) or missing(v) for v in column)


def is_object(column: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(column.dtype)


def spec_of(column: pd.Series, allow_empty: bool = True) -> Any:
    """What `_restore` needs to give ``column`` its dtype back."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = to_json(dtype.categories, path=f"the categories of column {column.name!r}")
        return {"kind": "category", "categories": categories, "ordered": bool(dtype.ordered)}
    if isinstance(dtype, pd.StringDtype):
        return {"kind": "string", "storage": dtype.storage, "na": "NA" if dtype.na_value is pd.NA else "nan"}
    if is_object(column):
        return "object" if is_text(column, allow_empty) else {"kind": "json"}
    return str(dtype)


def _dtype(spec: Any) -> Any:
    if isinstance(spec, str):
        return pd.api.types.pandas_dtype(spec)
    if spec["kind"] == "category":
        return pd.CategoricalDtype(from_json(spec["categories"]), ordered=spec["ordered"])
    na = pd.NA if spec["na"] == "NA" else float("nan")
    try:
        return pd.StringDtype(storage=spec["storage"], na_value=na)
    except ImportError:
        # Written with pyarrow strings, read where pyarrow is missing: same values, default storage.
        return pd.StringDtype(na_value=na)


def text_cells(frame: pd.DataFrame, specs: dict[str, Any]) -> pd.DataFrame:
    """``frame`` with the cells of serde-stored object columns as JSON text, for CSV and parquet."""
    out = {}
    for name, spec in specs.items():
        column = frame[name]
        if isinstance(spec, dict) and spec["kind"] == "json":
            path = f"column {name!r}"
            column = pd.Series([None if v is None else dumps(v, path=path) for v in column], dtype=object)
        out[name] = column
    return pd.DataFrame(out, columns=list(specs))


def _restore(values: pd.Series, spec: Any, source: str, where: Path) -> pd.Series:
    """``values`` as read from ``source`` ("text", "native" JSON or "arrow"), with the dtype back."""
    try:
        return _convert(values, spec, source)
    except (ValueError, TypeError, KeyError, ImportError, OverflowError) as exc:
        msg = f"Column {values.name!r} of {where} could not be given back its dtype {_describe(spec)} ({type(exc).__name__}: {exc}); it is left as read. Was the file edited after export?"
        warn_user(msg)
        return values


def _convert(values: pd.Series, spec: Any, source: str) -> pd.Series:
    name = values.name
    if isinstance(spec, dict) and spec["kind"] == "json":
        return pd.Series([None if missing(v) else loads(v) for v in values], dtype=object, name=name)
    if spec == "object":
        if source == "native":
            return values.astype(object)  # serde already gave each cell back exactly
        return pd.Series([None if missing(v) else v for v in values], dtype=object, name=name)
    dtype = _dtype(spec)
    if values.dtype == dtype:
        return values
    if isinstance(dtype, pd.CategoricalDtype):
        if source == "text":
            lookup = {str(c): c for c in dtype.categories}
            unknown = sorted({v for v in values if not missing(v) and v not in lookup})
            if unknown:
                msg = f"values {unknown[:5]} are not among its categories {list(lookup)}"
                raise ValueError(msg)
            values = pd.Series([None if missing(v) else lookup[v] for v in values], dtype=object)
        return pd.Series(pd.Categorical(values, dtype=dtype), name=name)
    if values.dtype != object:
        return values.astype(dtype)
    if pd.api.types.is_bool_dtype(dtype) and source == "text":
        words = {"True": True, "False": False}
        unknown = sorted({v for v in values if not missing(v) and v not in words})
        if unknown:
            msg = f"{unknown[:5]} are not True or False"
            raise ValueError(msg)
        values = pd.Series([None if missing(v) else words[v] for v in values], dtype=object, name=name)
    elif isinstance(dtype, pd.DatetimeTZDtype) or getattr(dtype, "kind", None) == "M":
        tz = getattr(dtype, "tz", None)
        parsed = pd.to_datetime(values, format="ISO8601", utc=tz is not None)
        return (parsed.dt.tz_convert(tz) if tz is not None else parsed).astype(dtype)
    elif getattr(dtype, "kind", None) == "m":
        return pd.to_timedelta(values).astype(dtype)
    return values.astype(dtype)


def _describe(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    return {"category": "category", "json": "object (serde JSON)"}.get(spec["kind"], "string")


def restore_all(frame: pd.DataFrame, specs: dict[str, Any], source: str, where: Path) -> pd.DataFrame:
    columns = {}
    for name in frame.columns:
        values = frame[name]
        columns[name] = _restore(values, specs[name], source, where) if name in specs else values
    return pd.DataFrame(columns, columns=list(frame.columns))
