"""Sweep results on disk with their provenance: the ``df.nbflow`` accessor and `load_results`.

Importing this module registers the accessor. The format follows the extension:

- ``.parquet`` (needs pyarrow: ``pip install 'nbflow[parquet]'``): the table as
  Arrow columns. The provenance is in the file's key-value metadata under
  ``nbflow`` (JSON written by nbflow's serde), each column's dtype under
  ``nbflow.dtypes``.
- ``.json``: one object, ``{"format": "nbflow-results", "version": 1,
  "nbflow": <provenance>, "columns": [...], "dtypes": {...}, "data": [...]}``,
  with one record (a dict keyed by column) per row. Datetimes and timedeltas
  are ISO 8601 strings, missing values ``null``; values of object columns are
  stored by nbflow's serde, so tuples, arrays and nan come back as they were.
- ``.csv``: a plain CSV any tool can read. Provenance, dtypes and a checksum of
  the CSV go to a sidecar beside it, ``<name>.csv.nbflow.json``. Without the
  sidecar the CSV still loads, with pandas' own type guesses and a warning.

What comes back: the values, the column order, the dtypes (numpy numbers and
bools, nullable ``Int64``/``Float64``/``boolean``, ``str``/``string``,
datetimes with unit and time zone, timedeltas, categoricals with their
categories) and ``attrs["nbflow"]``. Object columns holding only strings and
missing values stay readable text, and load with None for the missing values
(a nan among the strings comes back as None). Any other object column is
stored cell by cell as serde JSON text in CSV and parquet, and loads exactly.
In CSV an empty string in a ``str`` column cannot be told from a missing value.
Other ``attrs`` keys are not stored.

The index is not stored: named index levels become columns first (as
``df.reset_index()`` would make them), an unnamed index is dropped, and the
loaded frame has a fresh RangeIndex. Column labels must be unique strings.

Every file is written to a temporary file in the same directory and moved into
place, so a reader never sees half a file, and an export that fails (a full
disk) leaves the old file, and a CSV's old sidecar, as they were. A new file is
readable by its owner only (0o600); an existing file keeps its permissions.

An export writes only where its path points. ``..`` and symbolic links among
the folders are followed as the OS would follow them, but a symbolic link as the
file itself (or as a CSV's sidecar) is refused unless it points to a file in
the same folder: a link planted at ``runs.csv`` must not turn an export into a
write to ``~/.bashrc``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from nbflow.errors import ResultsColumnError, ResultsError, ResultsExistError, ResultsNotFoundError
from nbflow.persistence.serde import to_json
from nbflow.sweeps import plots
from nbflow.sweeps.compare import plot_comparison
from nbflow.sweeps.curves import curves_frame
from nbflow.sweeps.dtype_spec import without_index
from nbflow.sweeps.files import SUPPORTED_EXTENSIONS, kind_of, refuse_link_elsewhere, refuse_non_file
from nbflow.sweeps.formats import SIDECAR_SUFFIX, read_results, write_results
from nbflow.sweeps.naming import run_column

__all__ = ["NbflowAccessor", "load_results", "sidecar_path", "SUPPORTED_EXTENSIONS"]

_DONE = ("ok", "cached")
_FAILED = ("error", "timeout")


@pd.api.extensions.register_dataframe_accessor("nbflow")
class NbflowAccessor:
    """``df.nbflow``: export with provenance, and pick rows of a sweep's results.

    Example:
        >>> import pandas as pd
        >>> import nbflow.sweeps.export  # registers df.nbflow
        >>> df = pd.DataFrame({"lr": [0.1, 0.01, 1.0], "acc": [0.8, 0.9, None], "status": ["ok", "ok", "error"]})
        >>> print(df.nbflow.best("acc")["lr"], len(df.nbflow.failed()), len(df.nbflow.ok()))
        0.01 1 2
    """

    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df

    @property
    def provenance(self) -> dict:
        """``df.attrs["nbflow"]``: how the results were made (see `collect_provenance`); ``{}`` if unknown."""
        return self._df.attrs.get("nbflow", {})

    def export(self, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
        """Write the frame and its provenance to ``path``; the extension picks the format.

        Args:
            path: where to write: a ``.csv``, ``.json`` or ``.parquet`` file.
                Missing parent directories are created. A CSV also writes
                ``<path>.nbflow.json`` beside it; nothing else is written.
            overwrite: replace an existing file (keeping its permissions).

        Returns:
            The resolved path written.

        Raises:
            ExportError: an unsupported extension, a path that is a directory,
                or column labels that are not unique strings.
            ResultsExistError: the file exists and ``overwrite`` is false.
            MissingDependencyError: ``.parquet`` without pyarrow installed.
            SerializationError: a provenance value or an object cell nbflow's
                serde cannot store.
            OSError: the file could not be written (a full disk, a file-size
                limit, no permission); the old file, if any, is unchanged.

        Example:
            >>> import pathlib, tempfile
            >>> import pandas as pd
            >>> from nbflow.sweeps.export import load_results
            >>> df = pd.DataFrame({"lr": [0.1, 0.01], "acc": [0.8, 0.9]})
            >>> df.attrs["nbflow"] = {"target_name": "train"}
            >>> out = df.nbflow.export(pathlib.Path(tempfile.mkdtemp()) / "runs.csv")
            >>> loaded = load_results(out)
            >>> loaded["acc"].tolist(), loaded.nbflow.provenance
            ([0.8, 0.9], {'target_name': 'train'})
        """
        given = Path(os.fspath(path)).expanduser()
        kind = kind_of(given, "export to")
        target = given.resolve()
        refuse_link_elsewhere(given, target, "export to")
        refuse_non_file(target, "write results to")
        if not overwrite and target.exists():
            msg = f"Cannot export to {target}: the file exists. Pass overwrite=True to replace it, or choose another name."
            raise ResultsExistError(msg)
        frame = without_index(self._df)
        provenance = to_json(self.provenance, path="df.attrs['nbflow']")
        write_results(frame, target, provenance, kind)
        return target

    def best(self, metric: str, mode: str = "max") -> pd.Series:
        """The row with the highest (``mode="max"``) or lowest (``"min"``) ``metric``.

        Only rows with status ``ok`` or ``cached`` count when there is a status
        column, and rows without a value for ``metric`` never do. On a tie the
        first such row wins.

        Raises:
            ResultsColumnError: no column ``metric`` (a KeyError).
            ResultsError: ``metric`` is not numeric, ``mode`` is neither
                ``"max"`` nor ``"min"``, or no row qualifies.

        Example:
            >>> import pandas as pd
            >>> import nbflow.sweeps.export
            >>> df = pd.DataFrame({"lr": [0.1, 0.01], "loss": [0.5, 0.2]})
            >>> print(df.nbflow.best("loss", mode="min")["lr"])
            0.01
        """
        df = self._df
        if mode not in ("max", "min"):
            msg = f"best(mode=...) takes 'max' or 'min', not {mode!r}."
            raise ResultsError(msg)
        numeric = [str(c) for c, t in df.dtypes.items() if plots.is_number(t)]
        if metric not in df.columns:
            msg = f"No column {metric!r} in these results. Numeric columns: {numeric}. Pass one of them to best()."
            raise ResultsColumnError(msg)
        column = df.loc[:, metric]
        if isinstance(column, pd.DataFrame):
            msg = f"Column {metric!r} appears {column.shape[1]} times in these results; best() needs one. Rename the duplicates."
            raise ResultsError(msg)
        if not plots.is_number(column.dtype):
            msg = f"Column {metric!r} holds {column.dtype} values, not numbers, so best() cannot rank it. Numeric columns: {numeric}."
            raise ResultsError(msg)
        rows = self.ok() if run_column(df, "status") in df.columns else df
        # Positions, not labels: a filtered or concatenated frame may repeat index labels.
        ranked = rows[metric].reset_index(drop=True)
        if not ranked.notna().any():
            raise ResultsError(_no_best_message(df, rows, metric))
        return rows.iloc[ranked.idxmax() if mode == "max" else ranked.idxmin()]

    def failed(self) -> pd.DataFrame:
        """The rows that failed: status ``error`` or ``timeout`` (an empty frame with the same columns if none).

        Raises:
            ResultsError: the frame has no ``status`` column.

        Example:
            >>> import pandas as pd
            >>> import nbflow.sweeps.export
            >>> df = pd.DataFrame({"x": [1, 2], "status": ["ok", "error"], "error": [None, "ValueError: x=2"]})
            >>> df.nbflow.failed()["error"].tolist()
            ['ValueError: x=2']
        """
        return self._df[self._status("failed").isin(_FAILED)]

    def ok(self) -> pd.DataFrame:
        """The rows whose status is ``ok`` or ``cached``.

        Raises:
            ResultsError: the frame has no ``status`` column.

        Example:
            >>> import pandas as pd
            >>> import nbflow.sweeps.export
            >>> df = pd.DataFrame({"x": [1, 2, 3], "status": ["ok", "error", "cached"]})
            >>> df.nbflow.ok()["x"].tolist()
            [1, 3]
        """
        return self._df[self._status("ok").isin(_DONE)]

    def log(self, task_id: int) -> str:
        """What the point ``task_id`` left behind; for a failed point, ending with its full traceback.

        Returns an empty string for a point that logged nothing.

        Raises:
            ResultsError: no row has that task id.

        Example:
            >>> import nbflow
            >>> df = nbflow.sweep(lambda x: 1 / x, {"x": [0, 1]}, progress=False)
            >>> df.nbflow.log(0).splitlines()[-1], df.nbflow.log(1)
            ('ZeroDivisionError: division by zero', '')
        """
        column = run_column(self._df, "task_id")
        if column not in self._df.columns or not (self._df[column] == task_id).any():
            known = self._df[column].tolist()[:20] if column in self._df.columns else []
            msg = f"No row with task id {task_id!r} in these results (task ids: {known}). Pass a value of the {column!r} column."
            raise ResultsError(msg)
        logs = self.provenance.get("logs")
        return logs.text(int(task_id)) if logs is not None else ""

    def curves(self) -> pd.DataFrame:
        """Every report the points made with `nbflow.report`: one row per report, in point and step order.

        Columns: the point's parameters, its task id, ``step``, then one column per metric, named
        as in the frame (a metric named like a parameter is ``<name>_out`` there and here). Only
        the points of these rows: the curves of a slice are the slice's.

        Example:
            >>> import nbflow
            >>> def fit(lr):
            ...     for step in range(2):
            ...         nbflow.report(loss=lr / (step + 1))
            >>> nbflow.sweep(fit, {"lr": [1.0, 2.0]}, progress=False).nbflow.curves().to_dict("records")[1]
            {'lr': 1.0, 'task_id': 0, 'step': 1, 'loss': 0.5}
        """
        df = self._df
        task_column = run_column(df, "task_id")
        axes = plots.sweep_axes(df)
        reported = self.provenance.get("curves") or {}
        renamed = (self.provenance.get("columns") or {}).get("outputs", {})
        points = df[[*axes, task_column]].to_dict("records") if task_column in df.columns and reported else []
        return curves_frame(points, reported, axes, task_column, renamed)

    def plot(self, y: str | None = None, **options: Any) -> Any:
        """Plot metric ``y`` of the finished rows in the chart the sweep's shape calls for.

        On what `nbflow.compare` returned, ``y`` is not needed: the compared metric is drawn
        against the first shared axis, one line per run.

        A line over one numeric axis (bars over a categorical one), with error bars where
        seeds or other axes repeat a point; a heatmap over two axes; parallel coordinates
        beyond. ``kind=``, ``x=``, ``by=`` and ``ax=`` override the choice; see
        `nbflow.sweeps.plots.plot`. Returns the matplotlib Axes (matplotlib is the ``plot`` extra).

        Example:
            >>> import nbflow
            >>> df = nbflow.sweep(lambda lr, depth: lr * depth, {"lr": [0.1, 1.0], "depth": [1, 2, 3]}, progress=False)
            >>> ax = df.nbflow.plot("result")
            >>> ax.images[0].get_array().shape, ax.get_xlabel(), ax.get_ylabel()
            ((3, 2), 'lr', 'depth')
        """
        if "compare" in self.provenance:
            return plot_comparison(self._df, **options)
        if y is None:
            numbers = [str(c) for c in self._df.columns if plots.is_number(self._df[c])]
            msg = f"df.nbflow.plot() needs y=, the metric to plot: one of {numbers}."
            raise ResultsError(msg)
        return plots.plot(self._df, y, **options)

    def plot_curves(self, metric: str, **options: Any) -> Any:
        """One line per point of what it reported of ``metric`` against ``step``, coloured by an axis.

        ``by=`` picks the axis (by default the first that varies); ``ax=`` an Axes to draw on.
        Returns the matplotlib Axes.
        """
        axes = plots.sweep_axes(self._df)
        task = run_column(self._df, "task_id")
        return plots.plot_curves(self.curves(), metric, axes=axes, task=task, **options)

    def plot_best(self, metric: str | None = None, *, mode: str | None = None, **options: Any) -> Any:
        """Each trial's ``metric`` and the best so far, in trial order: how a search converged.

        ``metric`` and ``mode`` default to those `nbflow.optimize` searched with. Returns the
        matplotlib Axes.
        """
        searched = self._df.attrs.get("nbflow", {}).get("search") or {}
        metric = metric or searched.get("metric")
        if metric is None:
            msg = "plot_best() needs metric=: these results are not from nbflow.optimize, which would say."
            raise ResultsError(msg)
        return plots.plot_best(self._df, metric, mode=mode or searched.get("mode", "min"), **options)

    def _status(self, method: str) -> pd.Series:
        column = run_column(self._df, "status")
        if column not in self._df.columns:
            msg = f"df.nbflow.{method}() needs a 'status' column, and these results have none (columns: {[str(c) for c in self._df.columns]}). Use it on the DataFrame a sweep returns, or on one loaded with nbflow.sweeps.export.load_results()."
            raise ResultsError(msg)
        return self._df[column]


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read results written by ``df.nbflow.export``, with their dtypes and ``attrs["nbflow"]``.

    Args:
        path: a ``.csv`` (its sidecar ``<path>.nbflow.json`` is read too),
            ``.json`` or ``.parquet`` file.

    Returns:
        The frame, with a fresh RangeIndex and the provenance in
        ``attrs["nbflow"]`` (``{}`` for a CSV without its sidecar, which loads
        with pandas' type guesses and a warning).

    Raises:
        ResultsNotFoundError: no file at ``path`` (a FileNotFoundError).
        ExportError: an unsupported extension, a directory, or a JSON file
            that nbflow did not write.
        MissingDependencyError: ``.parquet`` without pyarrow installed.

    Example:
        >>> import pathlib, tempfile
        >>> import pandas as pd
        >>> from nbflow.sweeps.export import load_results
        >>> df = pd.DataFrame({"when": pd.to_datetime(["2024-05-01"]), "ok": [True]})
        >>> out = df.nbflow.export(pathlib.Path(tempfile.mkdtemp()) / "runs.json")
        >>> load_results(out).dtypes.astype(str).tolist()
        ['datetime64[us]', 'bool']
    """
    given = Path(os.fspath(path)).expanduser()
    kind = kind_of(given, "load results from")
    target = given.resolve()
    if not target.exists():
        msg = f"No results file at {target}. Check the path, or write the file first with df.nbflow.export({str(given)!r})."
        raise ResultsNotFoundError(msg)
    refuse_non_file(target, "load results from")
    return read_results(target, kind)


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the provenance and dtypes of a CSV export live: ``<path>.nbflow.json`` beside it.

    Example:
        >>> sidecar_path("/tmp/runs.csv").name
        'runs.csv.nbflow.json'
    """
    target = Path(os.fspath(path)).expanduser().resolve()
    return target.with_name(target.name + SIDECAR_SUFFIX)


def _no_best_message(df: pd.DataFrame, rows: pd.DataFrame, metric: str) -> str:
    status = run_column(df, "status")
    if df.empty:
        why = "the results are empty"
    elif rows.empty:
        counts = ", ".join(f"{n} {s}" for s, n in df[status].value_counts().items())
        why = f"none of the {len(df)} rows has status 'ok' or 'cached' ({counts})"
    else:
        eligible = "with status 'ok' or 'cached' " if status in df.columns else ""
        why = f"the {len(rows)} rows {eligible}have no value for {metric!r}"
    fix = (
        " See df.nbflow.failed() for what went wrong."
        if status in df.columns and (df[status] == "error").any()
        else ""
    )
    return f"No row to take the best {metric!r} from: {why}.{fix}"
