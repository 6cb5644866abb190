"""The sweep panel's plot: one metric against one axis, drawn by `nbflow.sweeps.plots`, as SVG.

SVG, so it shows in an ``ipywidgets.HTML``, in a saved notebook and in any browser, its text
stays text, and each point can carry its parameters: hovering a point shows them (a ``<title>``
in the point's group, which browsers show as a tooltip).
"""

from __future__ import annotations

import html
import io
import re
from typing import Any

from nbflow.errors import NbflowError
from nbflow.sweeps.plots import done_rows, is_number, plot, plottable, tick_label

__all__ = ["metric_plot"]

# Past this many points, one marker per point would make the page heavy: points are not drawn.
_POINTS_DRAWN = 400


def metric_plot(frame: Any, metric: str, axis: str, axes: list[str], *, log_x: bool = False) -> str:
    """``metric`` against ``axis``: the mean over the other axes with error bars, and a dot per point.

    Only rows whose status is ``ok`` or ``cached`` and that have a value of ``metric`` are drawn.

    Returns:
        The SVG markup, or a short HTML note when there is nothing to draw yet.
    """
    try:
        from matplotlib import rc_context
        from matplotlib.figure import Figure
    except ImportError:
        return "<div class='nbflow-plot-empty'>The plot needs matplotlib: pip install 'nbflow[plot]'.</div>"
    if metric not in frame.columns or axis not in frame.columns:
        return "<div class='nbflow-plot-empty'>Nothing to plot yet.</div>"
    try:
        rows = plottable(done_rows(frame, metric), axes)
    except NbflowError:
        return f"<div class='nbflow-plot-empty'>No finished point has a number for {html.escape(metric)!r} yet.</div>"
    numeric = is_number(rows[axis])
    log_x = log_x and numeric and bool((rows[axis] > 0).all())
    figure = Figure(figsize=(6.0, 3.6), dpi=72, layout="constrained")
    ax = figure.add_subplot()
    plot(rows, metric, x=axis, axes=axes, ax=ax, kind="line" if numeric else "bar")
    if numeric:
        # The axis's control says how it was swept: a log slider gets a log scale, nothing else does.
        ax.set_xscale("log" if log_x else "linear")
    ax.set_title(f"{metric} against {axis}" + (" (log scale)" if log_x else ""))
    titles = []
    if len(rows) <= _POINTS_DRAWN:
        places = list(dict.fromkeys(rows[axis].tolist()))
        for number, (_, row) in enumerate(rows.iterrows()):
            x = row[axis] if numeric else places.index(row[axis])
            ax.plot(
                [x], [row[metric]], "o", color="C0", alpha=0.35, markersize=5, gid=f"nbflow-point-{number}"
            )
            titles.append(", ".join(f"{a}={tick_label(row[a])}" for a in (*axes, metric) if a in row.index))
    buffer = io.StringIO()
    # Text as text (searchable, smaller); ids from a fixed salt, so a redraw is the same markup.
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "nbflow"}):
        figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :].replace("<svg ", '<svg class="nbflow-plot" ', 1)
    return re.sub(
        r'<g id="nbflow-point-(\d+)">',
        lambda m: f"{m[0]}<title>{html.escape(titles[int(m[1])])}</title>",
        svg,
    )
