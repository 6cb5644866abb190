"""A small inline SVG plot of one metric against one axis, for the sweep panel.

Plain SVG, so the panel needs no plotting library and the drawing shows in any
browser, in a saved notebook and in an ``ipywidgets.HTML``.
"""

from __future__ import annotations

import html
import math
import numbers
from typing import Any

__all__ = ["metric_plot"]

_WIDTH, _HEIGHT = 440, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 16, 28, 44
_MAX_TICKS = 8
_COLOR = "#1f77b4"


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, numbers.Real) else str(value)


def _text(x: float, y: float, label: str, anchor: str = "middle", size: int = 11) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" font-family="sans-serif">{html.escape(label)}</text>'


def metric_plot(frame: Any, metric: str, axis: str, *, log_x: bool = False) -> str:
    """``metric`` against ``axis`` as an inline SVG: a dot per finished point, a line through the means.

    Only rows whose status is ``ok`` or ``cached`` and whose metric is a finite
    number are drawn. When other axes vary too, each value of ``axis`` has
    several dots, and the line joins their mean.

    Args:
        frame: a sweep's results DataFrame.
        metric: the column to plot upwards.
        axis: the column to plot across; numbers are placed on a scale (a log
            scale with ``log_x``), anything else in the order it first appears.
        log_x: a log scale across (for an axis swept in decades).

    Returns:
        The SVG markup, or a short HTML note when there is nothing to draw yet.
    """
    import pandas as pd

    if metric not in frame.columns or axis not in frame.columns:
        return '<div class="nbflow-plot-empty">Nothing to plot yet.</div>'
    done = frame[frame["status"].isin(["ok", "cached"])] if "status" in frame.columns else frame
    ys = pd.to_numeric(done[metric], errors="coerce").replace([math.inf, -math.inf], math.nan)
    keep = ys.notna()
    xs, ys = list(done.loc[keep, axis]), [float(v) for v in ys[keep]]
    if not ys:
        return f'<div class="nbflow-plot-empty">No finished point has a number for {html.escape(metric)!r} yet.</div>'

    numeric = all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in xs)
    log_x = log_x and numeric and all(x > 0 for x in xs)
    if numeric:
        order = sorted(set(xs))
        position = {x: math.log10(x) if log_x else float(x) for x in order}
    else:
        order = list(dict.fromkeys(map(str, xs)))
        xs = [str(x) for x in xs]
        position = {x: float(i) for i, x in enumerate(order)}

    x_lo, x_hi = min(position.values()), max(position.values())
    y_lo, y_hi = min(ys), max(ys)
    # A single value across (or upwards) would divide by zero; centre it in a unit span instead.
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    if y_hi == y_lo:
        pad = abs(y_lo) * 0.1 or 0.5
        y_lo, y_hi = y_lo - pad, y_hi + pad
    inner_w, inner_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def px(x: Any) -> float:
        return _LEFT + (position[x] - x_lo) / (x_hi - x_lo) * inner_w

    def py(y: float) -> float:
        return _TOP + (1 - (y - y_lo) / (y_hi - y_lo)) * inner_h

    by_x: dict[Any, list[float]] = {}
    for x, y in zip(xs, ys, strict=True):
        by_x.setdefault(x, []).append(y)
    means = [(x, sum(by_x[x]) / len(by_x[x])) for x in order if x in by_x]

    title = f"{metric} against {axis}" + (" (log scale)" if log_x else "")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="nbflow-plot" width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{html.escape(title)}">',
        f"<title>{html.escape(title)}</title>",
        f'<rect x="{_LEFT}" y="{_TOP}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#bbb"/>',
        _text(_WIDTH / 2, 16, title, size=12),
        _text(_LEFT + inner_w / 2, _HEIGHT - 6, axis),
    ]
    ticks = order if len(order) <= _MAX_TICKS else [order[0], order[len(order) // 2], order[-1]]
    for x in ticks:
        parts.append(_text(px(x), _TOP + inner_h + 16, _fmt(x), size=10))
    for y in (y_lo, (y_lo + y_hi) / 2, y_hi):
        parts.append(_text(_LEFT - 6, py(y) + 4, _fmt(y), anchor="end", size=10))
    for x, y in zip(xs, ys, strict=True):
        parts.append(
            f'<circle class="nbflow-plot-point" cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{_COLOR}" fill-opacity="0.35"/>'
        )
    line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in means)
    parts.append(
        f'<polyline class="nbflow-plot-mean" points="{line}" fill="none" stroke="{_COLOR}" stroke-width="2"/>'
    )
    parts.append("</svg>")
    return "".join(parts)
