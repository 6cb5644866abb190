"""The reports points made with `nbflow.report`, as one DataFrame: ``df.nbflow.curves()`` and ``Sweep.curves()``."""

from __future__ import annotations

from typing import Any

__all__ = ["curves_frame", "step_column"]


def step_column(axes: list[str], task_column: str) -> str:
    """``step``, unless an axis (or the task id) took the name: then ``nbflow_step``."""
    return "step" if "step" not in (*axes, task_column) else "nbflow_step"


def curves_frame(points: list[dict], reported: Any, axes: list[str], task_column: str, renamed: Any) -> Any:
    """The reports of ``points`` (each its axes' values and its task id), one row per report.

    ``reported`` maps a task id to its ``(step, metrics)`` reports; ``renamed`` is where the
    frame put outputs named like an axis (a metric follows its output's name).
    """
    import pandas as pd

    step_name = step_column(axes, task_column)
    taken = {*axes, task_column, step_name}
    metrics: dict[str, str] = {}
    rows = []
    for point in sorted(points, key=lambda p: p[task_column]):
        for step, values in reported.get(int(point[task_column]), ()):
            for name in values:
                if name not in metrics:
                    column = renamed.get(name, name)
                    metrics[name] = f"{column}_metric" if column in taken else column
            rows.append({**point, step_name: step, **{metrics[k]: v for k, v in values.items()}})
    columns = [*axes, task_column, step_name, *metrics.values()]
    return pd.DataFrame(rows, columns=columns)
