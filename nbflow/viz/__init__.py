"""Drawings of graphs and applications with Graphviz, coloured live by a `StatusTracker`.

Imports the ``graphviz`` Python package; nothing in the core imports this
package (``Graph.visualize`` and ``Application.visualize`` import it when called).
"""

from nbflow.viz.drawing import STATUS_COLOURS, DotNotFoundError, Drawing, visualize
from nbflow.viz.status import STATUSES, ActionStatus, StatusTracker, attach_tracker, attached_tracker

__all__ = [
    "visualize", "Drawing", "DotNotFoundError", "STATUS_COLOURS",
    "StatusTracker", "ActionStatus", "STATUSES", "attach_tracker", "attached_tracker",
]  # fmt: skip
