"""`compare`: one metric of several recorded runs, side by side, joined on the axes they share.

A run that varied an axis the others did not is averaged over it, and the result says so (a
warning, and ``attrs["nbflow"]["compare"]``): comparing a run over ``C`` and ``gamma`` with one
over ``C`` alone compares, at each ``C``, the mean over ``gamma`` with the other's value.
``df.nbflow.plot()`` draws the comparison: one line (or group of bars) per run.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from nbflow.errors import ResultsError
from nbflow.sweeps import plots
from nbflow.sweeps.files import warn_user
from nbflow.sweeps.grids import axis_key
from nbflow.sweeps.run_store import RunStore, run_id_of

__all__ = ["compare", "plot_comparison"]


def compare(
    *run_ids: Any, metric: str, on: str | list[str] | None = None, store: str | os.PathLike | None = None
) -> pd.DataFrame:
    """``metric`` of each run in one frame: a row per point of the shared axes, a column per run.

    Args:
        *run_ids: two or more run ids (``nbflow.runs()["run_id"]``), or the recorded frames
            themselves (their ``attrs["nbflow"]["run_id"]`` is used).
        metric: the output to compare, as the sweeps named it.
        on: the axes to join on; by default every axis all the runs share.
        store: the run store's folder (see `nbflow.runs`).

    Returns:
        The join axes, then ``<metric> (<run>)`` per run (a run is named by its name, or by its
        id when names repeat), and, for two runs, ``diff`` (the second minus the first). Only
        finished rows (``ok``, ``cached``) count; a point one run lacks is NaN in its column.
        ``attrs["nbflow"]["compare"]`` says which run is which, what was joined on, and what was
        averaged over.

    Raises:
        ResultsError: fewer than two runs, ``metric`` not a numeric output of one of them, or no
            axis that every run shares (each run's axes are listed).

    Example:
        >>> import tempfile, nbflow
        >>> store = tempfile.mkdtemp()
        >>> a = nbflow.sweep(lambda x: {"y": x}, {"x": [1, 2]}, name="a", progress=False, store=store)
        >>> b = nbflow.sweep(lambda x: {"y": 2 * x}, {"x": [1, 2]}, name="b", progress=False, store=store)
        >>> nbflow.compare(a, b, metric="y", store=store).to_dict("records")
        [{'x': 1, 'y (a)': 1, 'y (b)': 2, 'diff': 1}, {'x': 2, 'y (a)': 2, 'y (b)': 4, 'diff': 2}]
    """
    if len(run_ids) < 2:
        msg = f"compare() needs two or more runs to set side by side; got {len(run_ids)}. Pass run ids from nbflow.runs()['run_id']."
        raise ResultsError(msg)
    runs_store = RunStore(store)
    ids = [run_id_of(r) for r in run_ids]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        msg = f"compare(): run {twice[0]!r} is given more than once. Pass each run once."
        raise ResultsError(msg)
    frames = {run_id: runs_store.read(run_id) for run_id in ids}
    labels = _labels(ids, {i: runs_store.row(i)["name"] for i in frames})
    axes = {run_id: plots.sweep_axes(frame) for run_id, frame in frames.items()}
    joined_on = _join_axes(ids, labels, axes, on)
    columns = [f"{metric} ({labels[i]})" for i in ids]
    averaged: dict[str, list[str]] = {}
    parts = []
    for run_id, column in zip(ids, columns, strict=True):
        frame = frames[run_id]
        values, found = _metric_rows(frame, metric, labels[run_id])
        others = [a for a in axes[run_id] if a not in joined_on]
        keyed = values.assign(**{a: values[a].map(axis_key) for a in joined_on})
        grouped = keyed.groupby(joined_on, sort=False, dropna=False)[found]
        if (grouped.size() > 1).any():
            averaged[labels[run_id]] = others
        parts.append(grouped.mean().rename(column))
    table = pd.concat(parts, axis=1, join="outer").reset_index()
    if len(ids) == 2:
        table["diff" if "diff" not in table.columns else "nbflow_diff"] = (
            table[columns[1]] - table[columns[0]]
        )
    not_shared = {labels[i]: [a for a in axes[i] if a not in joined_on] for i in ids}
    not_shared = {k: v for k, v in not_shared.items() if v}
    if not_shared:
        said = "; ".join(f"{k} also varies {v}" for k, v in not_shared.items())
        msg = f"compare() joined the runs on {joined_on}, the axes they share; {said}, and is averaged over it where a point repeats."
        warn_user(msg)
    table.attrs["nbflow"] = {
        "axes": {a: list(dict.fromkeys(table[a])) for a in joined_on},
        "compare": {
            "metric": metric,
            "runs": {labels[i]: i for i in ids},
            "columns": columns,
            "on": joined_on,
            "not_shared": not_shared,
            "averaged": averaged,
        },
    }
    return table


def plot_comparison(table: pd.DataFrame, **options: Any) -> Any:
    """Draw what `compare` returned: the metric against the first join axis, one line per run."""
    said = table.attrs["nbflow"]["compare"]
    on, metric = said["on"], said["metric"]
    long = table.melt(id_vars=on, value_vars=said["columns"], var_name="run", value_name=metric)
    long["run"] = long["run"].map(dict(zip(said["columns"], said["runs"], strict=True)))
    long = long.dropna(subset=[metric])
    long.attrs["nbflow"] = {"axes": {**{a: [] for a in on}, "run": []}}
    options.setdefault("x", on[0])
    options.setdefault("by", "run")
    return plots.plot(long, metric, **options)


def _labels(ids: list[str], names: dict[str, str]) -> dict[str, str]:
    """A run's name where it names one run only, else its id."""
    counts = pd.Series([names[i] for i in ids]).value_counts()
    return {i: names[i] if counts[names[i]] == 1 else i for i in ids}


def _join_axes(ids: list[str], labels: dict[str, str], axes: dict[str, list], on: Any) -> list[str]:
    if on is not None:
        wanted = [on] if isinstance(on, str) else list(on)
        for run_id in ids:
            missing = [a for a in wanted if a not in axes[run_id]]
            if missing:
                msg = f"compare(on={wanted}): run {labels[run_id]!r} ({run_id}) has no axis {missing}; its axes are {axes[run_id]}. Join on axes every run has."
                raise ResultsError(msg)
        return wanted
    shared = [a for a in axes[ids[0]] if all(a in axes[i] for i in ids)]
    if not shared:
        listed = "; ".join(f"{labels[i]!r} ({i}): {axes[i]}" for i in ids)
        msg = f"compare(): these runs share no axis to join on. Their axes: {listed}. Compare runs that swept at least one parameter in common, or rename a column so they do, and pass on=."
        raise ResultsError(msg)
    return shared


def _metric_rows(frame: pd.DataFrame, metric: str, label: str) -> tuple[pd.DataFrame, str]:
    """The finished rows of ``frame`` with a value of ``metric``, and the column it is in (an output
    named like an axis is ``<name>_out``)."""
    renamed = (frame.attrs.get("nbflow", {}).get("columns") or {}).get("outputs", {})
    column = renamed.get(metric, metric)
    if column not in frame.columns or not plots.is_number(frame[column]):
        numbers = [str(c) for c in frame.columns if plots.is_number(frame[c])]
        msg = f"compare(metric={metric!r}): run {label!r} has no numeric output {metric!r}. Its numeric columns: {numbers}."
        raise ResultsError(msg)
    rows = plots.done_rows(frame, column) if frame[column].notna().any() else frame.iloc[:0]
    return rows, column
