"""Plots of a sweep's results: the chart its shape calls for, and its learning curves.

``df.nbflow.plot(y=...)`` looks at the axes that vary among the finished rows. An axis that
only repeats a point (a seed) is averaged over, and the rest pick the chart: a line over one
numeric axis (bars over a categorical one), a heatmap over two, parallel coordinates beyond
that. Repeated points become the mean with error bars of one standard deviation.
``df.nbflow.plot_curves(metric)`` draws one line per point from ``df.nbflow.curves()``.

matplotlib is the ``plot`` extra, imported when a plot is drawn. Every function takes an ``ax``
to draw on (a new figure by default, through pyplot, so a notebook shows it as pandas' plots
are shown) and returns the Axes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from nbflow.errors import MissingDependencyError, ResultsError
from nbflow.sweeps.curves import step_column
from nbflow.sweeps.grids import axis_key
from nbflow.sweeps.naming import run_column

__all__ = [
    "plot",
    "plot_curves",
    "plot_best",
    "done_rows",
    "is_number",
    "plottable",
    "sweep_axes",
    "tick_label",
    "KINDS",
]

KINDS = ("line", "bar", "heatmap", "parallel")
# Axes that repeat a point rather than move it: averaged over, not plotted against.
_REPEATS = ("seed", "random_state", "repeat", "rep", "trial", "run")
# Past this many cells a heatmap's values are not written in its cells.
_ANNOTATED_CELLS = 64


def _new_axes() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        msg = "Plotting sweep results needs matplotlib, which is not installed. Install it with: pip install 'nbflow[plot]'"
        raise MissingDependencyError(msg) from None
    return plt.subplots(figsize=(6.4, 4.2), layout="constrained")[1]


def is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _is_repeat(axis: Any) -> bool:
    name = str(axis).lower()
    return name in _REPEATS or name.endswith(("_seed", "_repeat"))


def sweep_axes(df: pd.DataFrame, axes: Sequence[Any] | None = None) -> list[Any]:
    """The sweep's axes among ``df``'s columns: ``axes``, or those its provenance names."""
    if axes is None:
        axes = list(df.attrs.get("nbflow", {}).get("axes", {}))
    return [a for a in axes if a in df.columns]


def plottable(df: pd.DataFrame, axes: Sequence[Any]) -> pd.DataFrame:
    """``df`` with each axis's unhashable values (lists, dicts) as their text, to group and label by."""
    fixed = {axis: df[axis].map(axis_key) for axis in axes if df[axis].dtype == object}
    return df.assign(**fixed) if fixed else df


def done_rows(df: pd.DataFrame, y: str) -> pd.DataFrame:
    """The rows that finished (``ok`` or ``cached``) with a value of ``y``."""
    if y not in df.columns:
        numbers = [str(c) for c in df.columns if is_number(df[c])]
        msg = f"No column {y!r} to plot. Pass y= one of the numeric columns: {numbers}."
        raise ResultsError(msg)
    if not is_number(df[y]):
        msg = f"Column {y!r} holds {df[y].dtype} values, which cannot be plotted as a metric. Pass y= a numeric column."
        raise ResultsError(msg)
    status = run_column(df, "status")
    rows = df[df[status].isin(("ok", "cached"))] if status in df.columns else df
    rows = rows[rows[y].notna()]
    if rows.empty:
        msg = f"No finished row has a value of {y!r} to plot ({len(df)} rows in all). See df.nbflow.failed() for what went wrong."
        raise ResultsError(msg)
    return rows


def _log_spaced(values: pd.Series) -> bool:
    """Numbers a sweep spread over decades (1e-4 ... 1e-1): plotted on a log scale."""
    if not is_number(values):
        return False
    low, high = values.min(), values.max()
    return bool(low > 0 and high / low >= 100)


def _choose(
    rows: pd.DataFrame, axes: list[Any], kind: str | None, x: Any, by: Any
) -> tuple[str, Any, Any, list[Any]]:
    """``(kind, x, by, shaped)``: what the caller gave, the rest from the axes that vary (``shaped``)."""
    if kind is not None and kind not in KINDS:
        msg = f"plot(kind={kind!r}) is not a chart nbflow draws. Pass one of {list(KINDS)}, or leave it out to pick from the sweep's shape."
        raise ValueError(msg)
    for name, value in (("x", x), ("by", by)):
        if value is not None and value not in rows.columns:
            msg = f"plot({name}={value!r}): no such column. Pass one of the sweep's axes: {[str(a) for a in axes]}."
            raise ResultsError(msg)
    varying = [a for a in axes if rows[a].nunique(dropna=False) > 1]
    shaped = [a for a in varying if not _is_repeat(a)] or varying
    free = [a for a in shaped if a not in (x, by)]
    if kind is None:
        if x is not None or by is not None:
            kind = "line"
        else:
            kind = "line" if len(shaped) < 2 else "heatmap" if len(shaped) == 2 else "parallel"
    if kind == "parallel":
        return kind, None, None, shaped or axes
    if x is None:
        if not free:
            msg = "Every finished row has the same parameters, so there is nothing to plot the metric against. Pass x= a column."
            raise ResultsError(msg)
        x = free.pop(0)
    if by is None and kind == "heatmap":
        if not free:
            msg = f"A heatmap needs two axes, and only {x!r} varies. Pass by= another column, or kind='line'."
            raise ResultsError(msg)
        by = free.pop(0)
    if kind == "line" and not is_number(rows[x]):
        kind = "bar"
    return kind, x, by, shaped


def plot(
    df: pd.DataFrame,
    y: str,
    *,
    kind: str | None = None,
    x: Any = None,
    by: Any = None,
    ax: Any = None,
    axes: Sequence[Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Plot metric ``y`` of the finished rows against the sweep's axes; returns the Axes.

    Args:
        y: the metric column.
        kind: ``"line"``, ``"bar"``, ``"heatmap"`` or ``"parallel"``; by default from the
            number of axes that vary (seeds and repeats are averaged over, not counted).
        x: the axis along the x axis (a line's, a bar chart's, a heatmap's columns).
        by: a line's or bar chart's groups (one line each), or a heatmap's rows.
        ax: a matplotlib Axes to draw on; a new figure by default.
        axes: the sweep's axes, if the frame's provenance does not say (a hand-made frame).
        **kwargs: passed to the matplotlib call that draws the data (``errorbar``, ``bar``,
            ``imshow`` or ``plot``), e.g. ``marker="s"`` or ``cmap="magma"``.

    Raises:
        ResultsError: ``y``, ``x`` or ``by`` is not a column, ``y`` is not numeric, or no
            finished row has a value of ``y``.
        MissingDependencyError: matplotlib is not installed (the ``plot`` extra).
    """
    axes = sweep_axes(df, axes)
    rows = plottable(done_rows(df, y), [*axes, *(c for c in (x, by) if c in df.columns)])
    if not axes and x is None:
        msg = "These results do not say which columns are the sweep's axes (their provenance is missing). Pass x= the column to plot against, or axes=[...]."
        raise ResultsError(msg)
    kind, x, by, shaped = _choose(rows, axes, kind, x, by)
    if ax is None:
        ax = _new_axes()
    if kind == "parallel":
        return _parallel(ax, rows, shaped, y, **kwargs)
    if kind == "heatmap":
        return _heatmap(ax, rows, x, by, y, **kwargs)
    return _lines(ax, rows, x, by, y, bars=kind == "bar", **kwargs)


def _stats(rows: pd.DataFrame, keys: list[Any], y: str) -> pd.DataFrame:
    """Mean, standard deviation and count of ``y`` for each combination of ``keys``, in sweep order."""
    return rows.groupby(keys, sort=False, dropna=False)[y].agg(["mean", "std", "count"]).reset_index()


def _lines(ax: Any, rows: pd.DataFrame, x: Any, by: Any, y: str, bars: bool, **kwargs: Any) -> Any:
    groups = [(None, rows)] if by is None else list(rows.groupby(by, sort=False, dropna=False))
    repeated = False
    categories = list(dict.fromkeys(rows[x].tolist())) if bars else []
    width = 0.8 / len(groups)
    for position, (value, part) in enumerate(groups):
        stats = _stats(part, [x], y)
        errors = stats["std"].fillna(0.0) if (stats["count"] > 1).any() else None
        repeated = repeated or errors is not None
        label = None if by is None else f"{by}={tick_label(value)}"
        if bars:
            where = [categories.index(v) + (position - (len(groups) - 1) / 2) * width for v in stats[x]]
            ax.bar(where, stats["mean"], width=width, yerr=errors, capsize=3, label=label, **kwargs)
        else:
            stats = stats.sort_values(x)
            options = {"marker": "o", "capsize": 3, **kwargs}
            ax.errorbar(stats[x], stats["mean"], yerr=errors, label=label, **options)
    if bars:
        ax.set_xticks(range(len(categories)), [tick_label(c) for c in categories])
    elif _log_spaced(rows[x]):
        ax.set_xscale("log")
    ax.set_xlabel(str(x))
    ax.set_ylabel(f"{y} (mean ± std)" if repeated else str(y))
    if by is not None:
        ax.legend(title=str(by), fontsize="small")
    return ax


def _heatmap(ax: Any, rows: pd.DataFrame, x: Any, by: Any, y: str, **kwargs: Any) -> Any:
    stats = _stats(rows, [by, x], y)
    columns = sorted(stats[x].unique(), key=_order) if is_number(rows[x]) else list(stats[x].unique())
    index = sorted(stats[by].unique(), key=_order) if is_number(rows[by]) else list(stats[by].unique())
    table = stats.pivot(index=by, columns=x, values="mean").reindex(index=index, columns=columns)
    image = ax.imshow(table.to_numpy(dtype=float), aspect="auto", **{"cmap": "viridis", **kwargs})
    ax.set_xticks(range(len(columns)), [tick_label(c) for c in columns])
    ax.set_yticks(range(len(index)), [tick_label(i) for i in index])
    ax.set_xlabel(str(x))
    ax.set_ylabel(str(by))
    ax.figure.colorbar(image, ax=ax, label=f"{y} (mean)" if (stats["count"] > 1).any() else str(y))
    if table.size <= _ANNOTATED_CELLS:
        low, high = image.get_clim()
        middle = (low + high) / 2
        for (i, j), value in pd.DataFrame(table.to_numpy()).stack().items():
            color = "black" if value > middle else "white"
            ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize="small", color=color)
    return ax


def _parallel(ax: Any, rows: pd.DataFrame, axes: list[Any], y: str, **kwargs: Any) -> Any:
    """One line per row across the axes and the metric, each scaled to [0, 1], coloured by the metric."""
    import matplotlib as mpl

    columns = [*axes, y]
    scaled = pd.DataFrame(index=rows.index)
    ticks = {}
    for column in columns:
        values = rows[column]
        if is_number(values):
            numbers = values.astype(float)
            if _log_spaced(values):
                numbers = numbers.map(math.log10)
            low, high = numbers.min(), numbers.max()
            scaled[column] = 0.5 if high == low else (numbers - low) / (high - low)
            ticks[column] = (tick_label(values.min()), tick_label(values.max()))
        else:
            order = list(dict.fromkeys(values.tolist()))
            scaled[column] = values.map(order.index) / max(len(order) - 1, 1)
            ticks[column] = (tick_label(order[0]), tick_label(order[-1]))
    norm = mpl.colors.Normalize(rows[y].min(), rows[y].max())
    cmap = mpl.colormaps[kwargs.pop("cmap", "viridis")]
    options = {"alpha": 0.7, "linewidth": 1.2, **kwargs}
    for (_, line), value in zip(scaled.iterrows(), rows[y], strict=True):
        ax.plot(range(len(columns)), line.to_numpy(dtype=float), color=cmap(norm(value)), **options)
    ax.set_xticks(range(len(columns)), [str(c) for c in columns])
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    for position, column in enumerate(columns):
        ax.axvline(position, color="0.6", linewidth=0.8)
        low, high = ticks[column]
        ax.annotate(low, (position, -0.05), ha="center", va="top", fontsize="x-small")
        ax.annotate(high, (position, 1.05), ha="center", va="bottom", fontsize="x-small")
    ax.figure.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=str(y))
    return ax


def plot_curves(
    curves: pd.DataFrame,
    metric: str,
    *,
    by: Any = None,
    axes: Sequence[Any] = (),
    task: Any = "task_id",
    ax: Any = None,
    **kwargs: Any,
) -> Any:
    """One line of ``metric`` against ``step`` per point of ``curves``, coloured by the axis ``by``.

    ``curves`` is ``df.nbflow.curves()``; ``axes`` are the sweep's axes among its columns,
    ``task`` its task id column, and ``by`` defaults to the first of them that varies. A numeric
    ``by`` gets a colour scale, any other a legend. ``**kwargs`` go to ``ax.plot``.
    """
    step = step_column(list(axes), task)
    if metric not in curves.columns or metric in (*axes, step, task):
        reported = [str(c) for c in curves.columns if c not in (*axes, step, task)]
        fix = (
            f"Pass one of the metrics reported: {reported}."
            if reported
            else "No point called nbflow.report() in these results."
        )
        msg = f"No reported metric {metric!r} to plot. {fix}"
        raise ResultsError(msg)
    if by is not None and by not in curves.columns:
        msg = f"plot_curves(by={by!r}): no such axis. Pass one of {[str(a) for a in axes]}."
        raise ResultsError(msg)
    curves = plottable(curves, axes)
    if by is None:
        by = next((a for a in axes if curves[a].nunique(dropna=False) > 1), None)
    if ax is None:
        ax = _new_axes()
    import matplotlib as mpl

    points = curves[curves[metric].notna()].groupby(task, sort=True)
    colour: Any = lambda value: None  # noqa: E731 - matplotlib's colour cycle
    if by is not None and is_number(curves[by]):
        values = curves[by]
        norm: Any = (
            mpl.colors.LogNorm(values.min(), values.max())
            if _log_spaced(values)
            else mpl.colors.Normalize(values.min(), values.max())
        )
        cmap = mpl.colormaps[kwargs.pop("cmap", "viridis")]
        colour = lambda value: cmap(norm(value))  # noqa: E731
        ax.figure.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=str(by))
    elif by is not None:
        order = list(dict.fromkeys(curves[by].tolist()))
        colour = lambda value: f"C{order.index(value) % 10}"  # noqa: E731
    labelled = set()
    for _, part in points:
        value = part[by].iloc[0] if by is not None else None
        label = None
        if by is not None and not is_number(curves[by]) and value not in labelled:
            labelled.add(value)
            label = tick_label(value)
        ax.plot(part[step], part[metric], color=colour(value), label=label, **kwargs)
    ax.set_xlabel("step")
    ax.set_ylabel(str(metric))
    if labelled:
        ax.legend(title=str(by), fontsize="small")
    return ax


def plot_best(df: pd.DataFrame, metric: str, *, mode: str = "min", ax: Any = None, **kwargs: Any) -> Any:
    """Each trial's ``metric`` against its number, and the best so far as a line: how a search converged.

    Pruned trials, which have no final value, are marked along the bottom. ``**kwargs`` go to
    the best-so-far line's ``ax.step``.
    """
    if mode not in ("min", "max"):
        msg = f"plot_best(mode={mode!r}): mode is 'min' or 'max'."
        raise ResultsError(msg)
    done = done_rows(df, metric)
    status, task = run_column(df, "status"), run_column(df, "task_id")
    order = task if task in df.columns else None
    pruned = df[df[status] == "pruned"] if status in df.columns else df.iloc[:0]
    if ax is None:
        ax = _new_axes()
    trial = (lambda rows: rows[order]) if order else (lambda rows: pd.Series(rows.index, index=rows.index))
    ax.scatter(trial(done), done[metric], s=14, color="C0", alpha=0.6, label="trial")
    if not pruned.empty:
        ax.plot(
            trial(pruned), [0.0] * len(pruned), "|", color="C7", markersize=10,
            transform=ax.get_xaxis_transform(), label="pruned",
        )  # fmt: skip
    ordered = done.sort_values(order) if order else done
    best = ordered[metric].cummin() if mode == "min" else ordered[metric].cummax()
    ax.step(trial(ordered), best, where="post", color="C3", label="best so far", **kwargs)
    ax.set_xlabel("trial")
    ax.set_ylabel(str(metric))
    ax.legend(fontsize="small")
    return ax


def _order(value: Any) -> Any:
    return (value is None or value != value, value)


def tick_label(value: Any) -> str:
    """A tick label: numbers to four significant digits, other values as they print."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
