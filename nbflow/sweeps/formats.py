"""How `nbflow.sweeps.export` lays results out on disk: one writer and one reader per format.

CSV (with a JSON sidecar for dtypes and provenance), nbflow's JSON, and
parquet. Every column carries its dtype spec (`nbflow.sweeps.dtype_spec`), and
every write is atomic (`nbflow.sweeps.files`).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from nbflow.errors import ExportError, MissingDependencyError, SerializationError
from nbflow.persistence.serde import from_json, to_json
from nbflow.sweeps.dtype_spec import is_object, missing, restore_all, spec_of, text_cells
from nbflow.sweeps.files import refuse_link_elsewhere, refuse_non_file, warn_user, write_atomic

__all__ = ["SIDECAR_SUFFIX", "write_results", "read_results"]

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


def _decode_provenance(data: Any, where: Path) -> Any:
    try:
        return from_json(data, path=f"the provenance in {where}")
    except SerializationError as exc:
        msg = f"{exc} The provenance is kept as the stored JSON."
        warn_user(msg)
        return data


def _write_csv(frame: pd.DataFrame, target: Path, provenance: Any) -> None:
    specs = {name: spec_of(frame[name], allow_empty=False) for name in frame.columns}
    cells = text_cells(frame, specs)
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
    write_atomic((target, lambda f: f.write(data)), (side, lambda f: f.write(text)))


def _category_text(column: pd.Series) -> pd.Series:
    labels = [str(c) for c in column.cat.categories]
    if len(set(labels)) < len(labels):
        clash = sorted({s for s in labels if labels.count(s) > 1})
        msg = f"Cannot export column {column.name!r} to CSV: categories print alike as {clash}, so a CSV cannot tell them apart. Export to .parquet or .json, or rename the categories."
        raise ExportError(msg)
    return pd.Series([None if missing(v) else str(v) for v in column], dtype=object)


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
        warn_user(msg)
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
    frame = restore_all(cells, sidecar.get("dtypes", {}), "text", target)
    frame.attrs["nbflow"] = _decode_provenance(sidecar.get("nbflow", {}), target)
    return frame


def _read_sidecar(side: Path, target: Path) -> dict | None:
    if not side.exists():
        msg = f"{target.name} has no sidecar {side.name} beside it, so it loads with pandas' type guesses and no provenance. Export with df.nbflow.export() to keep both."
        warn_user(msg)
        return None
    try:
        sidecar = json.loads(side.read_bytes())
    except (OSError, ValueError):
        sidecar = None
    if not isinstance(sidecar, dict) or sidecar.get("format") != _SIDECAR_FORMAT:
        msg = f"{side} is not an nbflow sidecar, so {target.name} loads with pandas' type guesses and no provenance. Export again with df.nbflow.export() to rewrite it."
        warn_user(msg)
        return None
    return sidecar


def _write_json(frame: pd.DataFrame, target: Path, provenance: Any) -> None:
    # Object cells go through serde as they are, so any object column is just "object" here.
    specs = {name: "object" if is_object(frame[name]) else spec_of(frame[name]) for name in frame.columns}
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
    write_atomic((target, lambda f: f.write(data)))


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
    frame = restore_all(cells, payload["dtypes"], "native", target)
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
    specs = {name: spec_of(frame[name]) for name in frame.columns}
    try:
        table = pa.Table.from_pandas(text_cells(frame, specs), preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        msg = f"Cannot write {target} as parquet: {exc}. Convert that column to a type Arrow stores, or export to .json, which stores any value nbflow's serde can."
        raise ExportError(msg) from exc
    meta = dict(table.schema.metadata or {})
    meta[b"nbflow"] = json.dumps(provenance).encode("utf-8")
    meta[b"nbflow.dtypes"] = json.dumps(
        {"version": _VERSION, "columns": list(specs), "dtypes": specs}
    ).encode("utf-8")
    table = table.replace_schema_metadata(meta)
    write_atomic((target, lambda f: pq.write_table(table, f)))


def _read_parquet(target: Path) -> pd.DataFrame:
    _, pq = _pyarrow(target)
    table = pq.read_table(target)
    meta = table.schema.metadata or {}
    frame = table.to_pandas()
    if b"nbflow.dtypes" not in meta:
        msg = f"{target.name} has no nbflow metadata, so it loads as pyarrow reads it, with no provenance."
        warn_user(msg)
        frame.attrs["nbflow"] = {}
        return frame
    layout = json.loads(meta[b"nbflow.dtypes"])
    frame = restore_all(frame, layout["dtypes"], "arrow", target)
    frame.attrs["nbflow"] = _decode_provenance(json.loads(meta.get(b"nbflow", b"{}")), target)
    return frame
