"""How `nbflow.sweeps.export` lays results out on disk: one writer and one reader per format.

Each column gets a dtype spec: ``str(dtype)`` for numpy and most extension
dtypes, a dict for the ones whose string loses something (categoricals keep
their categories and order, strings their storage and missing-value flavour),
``"object"`` for object columns kept as plain values, and ``{"kind": "json"}``
for object columns whose cells are stored as serde JSON text. Readers give
each column its dtype back from the spec; a column that will not convert (a
hand-edited file) is left as read, with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import stat
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pandas as pd

from nbflow.errors import ExportError, MissingDependencyError, SerializationError
from nbflow.persistence.serde import dumps, from_json, loads, to_json

__all__ = [
    "SUPPORTED_EXTENSIONS", "SIDECAR_SUFFIX", "kind_of", "refuse_link_elsewhere", "refuse_non_file",
    "without_index", "write_results", "read_results",
]  # fmt: skip

SUPPORTED_EXTENSIONS = (".csv", ".json", ".parquet")
SIDECAR_SUFFIX = ".nbflow.json"
_JSON_FORMAT = "nbflow-results"
_SIDECAR_FORMAT = "nbflow-csv-sidecar"
_VERSION = 1


def write_results(frame: pd.DataFrame, target: Path, provenance: Any, kind: str) -> None:
    """Write ``frame`` (index already folded in by `without_index`) as ``kind`` to ``target``."""
    writer = {".parquet": _write_parquet, ".json": _write_json, ".csv": _write_csv}[kind]
    writer(frame, target, provenance)


def read_results(target: Path, kind: str) -> pd.DataFrame:
    """The frame written to ``target`` as ``kind``, with its dtypes and ``attrs["nbflow"]``."""
    reader = {".parquet": _read_parquet, ".json": _read_json, ".csv": _read_csv}[kind]
    return reader(target)


# -- paths and atomic writes ---------------------------------------------------------------------------


def kind_of(path: Path, doing: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        shown = repr(suffix) if suffix else "no extension"
        msg = f"Cannot {doing} {path}: {shown} is not a supported format. Supported extensions: {', '.join(SUPPORTED_EXTENSIONS)}; end the file name with one of them."
        raise ExportError(msg)
    return suffix


def refuse_link_elsewhere(given: Path, target: Path, doing: str) -> None:
    """Refuse ``given`` if it is a symbolic link whose ``target`` lies outside ``given``'s own folder."""
    folder = given.parent.resolve()
    if given.is_symlink() and target.parent != folder:
        msg = f"Cannot {doing} {given}: it is a symbolic link to {target}, outside {folder}, and nbflow does not write through links that lead elsewhere. Remove the link, or pass {target} itself if that is where the results should go."
        raise ExportError(msg)


def refuse_non_file(target: Path, doing: str) -> None:
    if target.is_dir():
        msg = f"Cannot {doing} {target}: it is a directory. Pass a file path inside it, e.g. {target / ('results' + target.suffix)}."
        raise ExportError(msg)
    if target.exists() and not target.is_file():
        msg = f"Cannot {doing} {target}: it exists and is not a regular file. Choose another path."
        raise ExportError(msg)


def _write_atomic(*files: tuple[Path, Callable[[IO[bytes]], None]]) -> None:
    """Write each ``(target, write)`` through a temporary file beside it, then move them all into place.

    Nothing is moved until every file is written, so a failure (a full disk) leaves the old files
    as they were, and a CSV never ends up beside the sidecar of another export.
    """
    written: list[tuple[str, Path]] = []
    target = files[0][0]
    try:
        for target, write in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                mode = stat.S_IMODE(target.stat().st_mode)
            except FileNotFoundError:
                mode = 0o600
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            written.append((tmp, target))
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
        for tmp, target in written:
            os.replace(tmp, target)
    except BaseException as exc:
        for tmp, _ in written:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise OSError(exc.errno, _write_failed(files[0][0], target, exc)) from exc
        raise


# The OS refused the write for want of room: a full disk, a quota, a file-size limit (ulimit -f).
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def _write_failed(main: Path, failed: Path, exc: OSError) -> str:
    what = str(main) if failed == main else f"{main} (its sidecar {failed.name})"
    kept = "the file already there is unchanged" if main.exists() else "no file was left there"
    if exc.errno in _NO_ROOM:
        return f"Cannot export to {what}: {exc.strerror}; the disk is full, or the file reached a size limit (a quota, or ulimit -f). Free some space or raise the limit, or export elsewhere; {kept}."
    return f"Cannot export to {what}: {exc.strerror}. Check that the folder is writable, or export elsewhere; {kept}."


def _warn(msg: str) -> None:
    # Point the warning at the user's call, however deep inside this package it was raised.
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("nbflow.sweeps."):
        frame, level = frame.f_back, level + 1
    warnings.warn(msg, UserWarning, stacklevel=level)


# -- columns: what to store for each dtype, and how to get it back --------------------------------------


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


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _is_text(column: pd.Series, allow_empty: bool) -> bool:
    """Only strings and missing values: stored as readable text rather than serde JSON."""
    return all((type(v) is str and (allow_empty or v)) or _missing(v) for v in column)


def _is_object(column: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(column.dtype)


def _spec(column: pd.Series, allow_empty: bool = True) -> Any:
    """What `_restore` needs to give ``column`` its dtype back."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = to_json(dtype.categories, path=f"the categories of column {column.name!r}")
        return {"kind": "category", "categories": categories, "ordered": bool(dtype.ordered)}
    if isinstance(dtype, pd.StringDtype):
        return {"kind": "string", "storage": dtype.storage, "na": "NA" if dtype.na_value is pd.NA else "nan"}
    if _is_object(column):
        return "object" if _is_text(column, allow_empty) else {"kind": "json"}
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


def _text_cells(frame: pd.DataFrame, specs: dict[str, Any]) -> pd.DataFrame:
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
        _warn(msg)
        return values


def _convert(values: pd.Series, spec: Any, source: str) -> pd.Series:
    name = values.name
    if isinstance(spec, dict) and spec["kind"] == "json":
        return pd.Series([None if _missing(v) else loads(v) for v in values], dtype=object, name=name)
    if spec == "object":
        if source == "native":
            return values.astype(object)  # serde already gave each cell back exactly
        return pd.Series([None if _missing(v) else v for v in values], dtype=object, name=name)
    dtype = _dtype(spec)
    if values.dtype == dtype:
        return values
    if isinstance(dtype, pd.CategoricalDtype):
        if source == "text":
            lookup = {str(c): c for c in dtype.categories}
            unknown = sorted({v for v in values if not _missing(v) and v not in lookup})
            if unknown:
                msg = f"values {unknown[:5]} are not among its categories {list(lookup)}"
                raise ValueError(msg)
            values = pd.Series([None if _missing(v) else lookup[v] for v in values], dtype=object)
        return pd.Series(pd.Categorical(values, dtype=dtype), name=name)
    if values.dtype != object:
        return values.astype(dtype)
    if pd.api.types.is_bool_dtype(dtype) and source == "text":
        words = {"True": True, "False": False}
        unknown = sorted({v for v in values if not _missing(v) and v not in words})
        if unknown:
            msg = f"{unknown[:5]} are not True or False"
            raise ValueError(msg)
        values = pd.Series([None if _missing(v) else words[v] for v in values], dtype=object, name=name)
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


def _restore_all(frame: pd.DataFrame, specs: dict[str, Any], source: str, where: Path) -> pd.DataFrame:
    columns = {}
    for name in frame.columns:
        values = frame[name]
        columns[name] = _restore(values, specs[name], source, where) if name in specs else values
    return pd.DataFrame(columns, columns=list(frame.columns))


def _decode_provenance(data: Any, where: Path) -> Any:
    try:
        return from_json(data, path=f"the provenance in {where}")
    except SerializationError as exc:
        msg = f"{exc} The provenance is kept as the stored JSON."
        _warn(msg)
        return data


# -- the formats ------------------------------------------------------------------------------------------


def _write_csv(frame: pd.DataFrame, target: Path, provenance: Any) -> None:
    specs = {name: _spec(frame[name], allow_empty=False) for name in frame.columns}
    cells = _text_cells(frame, specs)
    for name, spec in specs.items():
        if isinstance(spec, dict) and spec["kind"] == "category":
            cells[name] = _category_text(frame[name])
    # RFC 4180 line ends: the csv module quotes a field only for the line terminator's own
    # characters, and read_csv takes a bare "\r" in an unquoted field for a line break.
    data = cells.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
    sidecar = {
        "format": _SIDECAR_FORMAT,
        "version": _VERSION,
        "csv_sha256": hashlib.sha256(data).hexdigest(),
        "nbflow": provenance,
        "columns": list(specs),
        "dtypes": specs,
    }
    side = target.with_name(target.name + SIDECAR_SUFFIX)
    refuse_link_elsewhere(side, side.resolve(), "write the CSV sidecar")
    refuse_non_file(side, "write the CSV sidecar")
    text = json.dumps(sidecar, indent=1).encode("utf-8")
    _write_atomic((target, lambda f: f.write(data)), (side, lambda f: f.write(text)))


def _category_text(column: pd.Series) -> pd.Series:
    labels = [str(c) for c in column.cat.categories]
    if len(set(labels)) < len(labels):
        clash = sorted({s for s in labels if labels.count(s) > 1})
        msg = f"Cannot export column {column.name!r} to CSV: categories print alike as {clash}, so a CSV cannot tell them apart. Export to .parquet or .json, or rename the categories."
        raise ExportError(msg)
    return pd.Series([None if _missing(v) else str(v) for v in column], dtype=object)


def _read_csv(target: Path) -> pd.DataFrame:
    raw = target.read_bytes()
    side = target.with_name(target.name + SIDECAR_SUFFIX)
    sidecar = _read_sidecar(side, target)
    if sidecar is None:
        frame = pd.read_csv(io.BytesIO(raw)) if raw.strip() else pd.DataFrame()
        frame.attrs["nbflow"] = {}
        return frame
    intact = sidecar.get("csv_sha256") == hashlib.sha256(raw).hexdigest()
    if not intact:
        msg = f"{target.name} changed after it was exported (its checksum differs from {side.name}); dtypes are restored for the columns whose names still match."
        _warn(msg)
    if raw.strip():
        # skip_blank_lines=False: a header or row that is only whitespace (a column named " ",
        # one missing value) is a line of the table, not a gap between lines.
        cells = pd.read_csv(
            io.BytesIO(raw), dtype=object, keep_default_na=False, na_values=[""], skip_blank_lines=False
        )
        if intact and len(cells.columns) == len(sidecar["columns"]):
            # The header is the one exported, and read_csv renames some labels ("" to "Unnamed: 0").
            cells.columns = sidecar["columns"]
    else:
        cells = pd.DataFrame({name: pd.Series([], dtype=object) for name in sidecar["columns"]})
    frame = _restore_all(cells, sidecar.get("dtypes", {}), "text", target)
    frame.attrs["nbflow"] = _decode_provenance(sidecar.get("nbflow", {}), target)
    return frame


def _read_sidecar(side: Path, target: Path) -> dict | None:
    if not side.exists():
        msg = f"{target.name} has no sidecar {side.name} beside it, so it loads with pandas' type guesses and no provenance. Export with df.nbflow.export() to keep both."
        _warn(msg)
        return None
    try:
        sidecar = json.loads(side.read_bytes())
    except (OSError, ValueError):
        sidecar = None
    if not isinstance(sidecar, dict) or sidecar.get("format") != _SIDECAR_FORMAT:
        msg = f"{side} is not an nbflow sidecar, so {target.name} loads with pandas' type guesses and no provenance. Export again with df.nbflow.export() to rewrite it."
        _warn(msg)
        return None
    return sidecar


def _write_json(frame: pd.DataFrame, target: Path, provenance: Any) -> None:
    # Object cells go through serde as they are, so any object column is just "object" here.
    specs = {name: "object" if _is_object(frame[name]) else _spec(frame[name]) for name in frame.columns}
    columns = {
        name: to_json(_json_cells(frame[name], spec), path=f"column {name!r}") for name, spec in specs.items()
    }
    records = (
        [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
        if columns
        else [{}] * len(frame)
    )
    payload = {
        "format": _JSON_FORMAT,
        "version": _VERSION,
        "nbflow": provenance,
        "columns": list(specs),
        "dtypes": specs,
        "data": records,
    }
    data = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    _write_atomic((target, lambda f: f.write(data)))


def _json_cells(column: pd.Series, spec: Any) -> list:
    if spec == "object":
        return column.tolist()
    missing = column.isna().tolist()
    kind = getattr(column.dtype, "kind", None)
    if kind in ("M", "m"):
        return [None if m else v.isoformat() for v, m in zip(column, missing, strict=True)]
    # astype(object): a categorical's values themselves, which serde stores with their types.
    values = (
        column.astype(object).tolist() if isinstance(column.dtype, pd.CategoricalDtype) else column.tolist()
    )
    return [None if m else v for v, m in zip(values, missing, strict=True)]


def _read_json(target: Path) -> pd.DataFrame:
    try:
        payload = json.loads(target.read_bytes())
    except ValueError as exc:
        msg = f"Cannot load {target}: it is not valid JSON ({exc}). Only files written by df.nbflow.export() load here; use pandas.read_json for others."
        raise ExportError(msg) from None
    if not isinstance(payload, dict) or payload.get("format") != _JSON_FORMAT:
        msg = f'Cannot load {target}: it is not an nbflow results file (no "format": "{_JSON_FORMAT}"). Only files written by df.nbflow.export() load here; use pandas.read_json for others.'
        raise ExportError(msg)
    names = payload["columns"]
    records = from_json(payload["data"], path=f"the data in {target}")
    cells = pd.DataFrame(
        {name: pd.Series([r.get(name) for r in records], dtype=object) for name in names}, columns=names
    )
    frame = _restore_all(cells, payload["dtypes"], "native", target)
    frame.attrs["nbflow"] = _decode_provenance(payload.get("nbflow", {}), target)
    return frame


def _pyarrow(target: Path) -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        msg = f"Parquet files ({target.name}) need pyarrow, which is not installed. Install it with: pip install 'nbflow[parquet]'; or use .csv or .json, which need nothing extra."
        raise MissingDependencyError(msg) from exc
    return pa, pq


def _write_parquet(frame: pd.DataFrame, target: Path, provenance: Any) -> None:
    pa, pq = _pyarrow(target)
    specs = {name: _spec(frame[name]) for name in frame.columns}
    try:
        table = pa.Table.from_pandas(_text_cells(frame, specs), preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        msg = f"Cannot write {target} as parquet: {exc}. Convert that column to a type Arrow stores, or export to .json, which stores any value nbflow's serde can."
        raise ExportError(msg) from exc
    meta = dict(table.schema.metadata or {})
    meta[b"nbflow"] = json.dumps(provenance).encode("utf-8")
    meta[b"nbflow.dtypes"] = json.dumps(
        {"version": _VERSION, "columns": list(specs), "dtypes": specs}
    ).encode("utf-8")
    table = table.replace_schema_metadata(meta)
    _write_atomic((target, lambda f: pq.write_table(table, f)))


def _read_parquet(target: Path) -> pd.DataFrame:
    _, pq = _pyarrow(target)
    table = pq.read_table(target)
    meta = table.schema.metadata or {}
    frame = table.to_pandas()
    if b"nbflow.dtypes" not in meta:
        msg = f"{target.name} has no nbflow metadata, so it loads as pyarrow reads it, with no provenance."
        _warn(msg)
        frame.attrs["nbflow"] = {}
        return frame
    layout = json.loads(meta[b"nbflow.dtypes"])
    frame = _restore_all(frame, layout["dtypes"], "arrow", target)
    frame.attrs["nbflow"] = _decode_provenance(json.loads(meta.get(b"nbflow", b"{}")), target)
    return frame
