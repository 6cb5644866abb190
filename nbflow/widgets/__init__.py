"""Notebook widgets built on ipywidgets. Nothing in nbflow imports this package; users and
``app.run(display=True)`` do."""

from nbflow.widgets.graph_view import GraphView
from nbflow.widgets.history_view import HistoryView
from nbflow.widgets.runs_view import RunsView
from nbflow.widgets.sweep_panel import SweepPanel

__all__ = ["GraphView", "SweepPanel", "HistoryView", "RunsView"]
