"""`RunsView`: the run store as a widget: filter the runs, load one, compare two, delete some.

Everything comes from `nbflow.runs`, `load_run`, `compare` and `delete_run`: the widget holds no
state of its own beyond what is selected. The table and the comparison are HTML and the plot SVG,
so they show in JupyterLab, and a saved notebook's static view shows the table of runs.
"""

from __future__ import annotations

import html
import io
import warnings
from pathlib import Path
from typing import Any

import ipywidgets

from nbflow.errors import NbflowError
from nbflow.sweeps.compare import compare, plot_comparison
from nbflow.sweeps.run_store import RUN_STATUSES, RunStore
from nbflow.sweeps.runs import delete_run, load_run, runs

__all__ = ["RunsView"]

_SHOWN = ["name", "status", "started_at", "duration_s", "executor", "points", "ok", "error", "cached"]
# Chromium draws the selected options of an unfocused multi-select grey, as if disabled: once the
# metric was picked, the two runs to compare no longer looked selected. JupyterLab styles a
# DataFrame's own output, not a table inside an HTML widget (or a saved notebook's), so the
# tables get the basics here.
_STYLE = (
    "<style>.nbflow-runs-view select[multiple] option:checked{"
    "background:#1976d2 linear-gradient(0deg,#1976d2 0%,#1976d2 100%);color:#fff}"
    ":is(.nbflow-runs,.nbflow-run,.nbflow-compare){border-collapse:collapse;font-size:12px;margin:4px 0}"
    ":is(.nbflow-runs,.nbflow-run,.nbflow-compare) :is(th,td)"
    "{padding:2px 8px;text-align:right;white-space:nowrap;border-bottom:1px solid #e0e0e0}"
    ":is(.nbflow-runs,.nbflow-run,.nbflow-compare) thead th{border-bottom:1px solid #999}</style>"
)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


class RunsView:
    """Browse the run store (``.nbflow/runs`` by default, or ``store=``) in a notebook.

    Pick runs in the list (Ctrl- or Shift-click for two), then **Load** shows one and keeps it in
    ``view.loaded``, **Compare** sets two side by side (``view.compared``, with a plot), and
    **Delete** asks before it removes the selected runs (never the result cache).

    Example:
        >>> import tempfile, nbflow
        >>> store = tempfile.mkdtemp()
        >>> _ = nbflow.sweep(lambda x: {"y": x}, {"x": [1, 2]}, progress=False, name="a", store=store)
        >>> view = RunsView(store)
        >>> view
        RunsView(1 run, 0 selected)
        >>> view.select(*view.run_ids); view.load()["y"].tolist()
        [1, 2]
    """

    def __init__(self, store: Any = None) -> None:
        self.store = RunStore(store).root
        self.loaded: Any = None
        self.compared: Any = None
        # Each run's numeric outputs, as the index had them at the last refresh: what the metric
        # list offers, without reading the index again on every click in the list.
        self._outputs: dict[str, dict] = {}
        self._deleting: list[str] = []

        self.name_filter = ipywidgets.Text(placeholder="name, e.g. svm-*", description="name")
        self.status_filter = ipywidgets.Dropdown(options=["any", *RUN_STATUSES], description="status")
        self.choices = ipywidgets.SelectMultiple(options=[], rows=8, layout={"width": "100%"})
        self.metric = ipywidgets.Dropdown(options=[], description="metric")
        self.load_button = ipywidgets.Button(description="Load", icon="folder-open")
        self.compare_button = ipywidgets.Button(description="Compare", icon="columns")
        self.delete_button = ipywidgets.Button(description="Delete", icon="trash", button_style="danger")
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.confirm_button = ipywidgets.Button(description="Yes, delete", button_style="danger")
        self.cancel_button = ipywidgets.Button(description="Keep them")
        self.confirmation = ipywidgets.HBox([], layout={"align_items": "center"})
        self.size_label = ipywidgets.HTML()
        # Cells do not wrap (a run id broke over three lines); a table wider than the cell scrolls.
        self.table = ipywidgets.HTML(layout={"overflow": "auto"})
        self.message = ipywidgets.HTML()
        self.result = ipywidgets.HTML(layout={"overflow": "auto"})
        self.plot = ipywidgets.HTML()
        self.widget = ipywidgets.VBox(
            [
                ipywidgets.HTML(_STYLE),
                ipywidgets.HBox([self.name_filter, self.status_filter, self.refresh_button]),
                self.size_label,
                self.choices,
                ipywidgets.HBox([self.load_button, self.metric, self.compare_button, self.delete_button]),
                self.confirmation,
                self.message,
                self.table,
                self.result,
                self.plot,
            ]
        )
        self.widget.add_class("nbflow-runs-view")

        self.name_filter.observe(lambda change: self.refresh(), names="value")
        self.status_filter.observe(lambda change: self.refresh(), names="value")
        self.choices.observe(lambda change: self._offer_metrics(), names="value")
        self.refresh_button.on_click(lambda button: self.refresh())
        self.load_button.on_click(lambda button: self.load())
        self.compare_button.on_click(lambda button: self.compare())
        self.delete_button.on_click(lambda button: self.delete())
        self.confirm_button.on_click(lambda button: self.confirm())
        self.cancel_button.on_click(lambda button: self.cancel())
        self.refresh()

    # -- the public face -------------------------------------------------------------------------

    @property
    def run_ids(self) -> list[str]:
        """The runs listed now (after the filters), oldest first."""
        return [value for _, value in self.choices.options]

    @property
    def selected(self) -> list[str]:
        """The runs selected: clicked ones in the list's order, `select`ed ones as given (`compare` keeps it)."""
        return list(self.choices.value)

    def refresh(self) -> None:
        """Read the store again, with the filters as they are."""
        status = None if self.status_filter.value == "any" else self.status_filter.value
        try:
            listed = runs(self.store, name=self.name_filter.value.strip() or None, status=status)
        except (NbflowError, ValueError, TypeError) as exc:
            self._say(str(exc), error=True)
            return
        store = RunStore(self.store)
        self._outputs = {r["run_id"]: r["outputs"] for r in store.rows()}
        kept = [r for r in self.selected if r in set(listed["run_id"])]
        self.choices.options = [(_label(row), row["run_id"]) for _, row in listed.iterrows()]
        self.choices.value = tuple(kept)
        count = len(self._outputs)
        self.size_label.value = f"<b>{count} run{'' if count == 1 else 's'}</b> · {_size(store.size())} in <code>{html.escape(_where(self.store))}</code>"
        self.table.value = _runs_table(listed) if len(listed) else _empty(self.store)
        self._offer_metrics()

    def select(self, *run_ids: str) -> None:
        """Select these runs in the list, as clicking them would."""
        unknown = [r for r in run_ids if r not in self.run_ids]
        if unknown:
            msg = f"RunsView.select(): {unknown} not listed; listed are {self.run_ids}."
            raise ValueError(msg)
        self.choices.value = tuple(run_ids)

    def load(self) -> Any:
        """Load the one selected run into ``view.loaded`` and show its first rows."""
        if len(self.selected) != 1:
            self._say("Select one run to load.", error=True)
            return None
        run_id = self.selected[0]
        try:
            self.loaded = load_run(run_id, self.store)
        except NbflowError as exc:
            self._say(str(exc), error=True)
            return None
        self._say(f"Loaded {html.escape(run_id)}: {len(self.loaded)} rows, in <code>view.loaded</code>.")
        self.result.value = self.loaded.head(20).to_html(max_cols=12, border=0, classes="nbflow-run")
        self.plot.value = ""
        return self.loaded

    def compare(self, metric: str | None = None) -> Any:
        """Compare the two selected runs on ``metric`` (the one picked by default): a table and a plot."""
        if len(self.selected) != 2:
            self._say(f"Select two runs to compare ({len(self.selected)} selected).", error=True)
            return None
        metric = metric or self.metric.value
        if not metric:
            self._say("These two runs have no numeric output in common to compare.", error=True)
            return None
        try:
            # compare() warns when a run is averaged over an axis it alone varies; the message below
            # says so, and a warning from a button's callback would only reach the log console.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.compared = compare(*self.selected, metric=metric, store=self.store)
        except NbflowError as exc:
            self._say(html.escape(str(exc)), error=True)
            self.result.value = self.plot.value = ""
            return None
        said = self.compared.attrs["nbflow"]["compare"]
        note = (
            f" Not shared, averaged over: {html.escape(str(said['not_shared']))}."
            if said["not_shared"]
            else ""
        )
        self._say(
            f"{html.escape(metric)} on {html.escape(', '.join(said['on']))}, in <code>view.compared</code>.{note}"
        )
        self.result.value = self.compared.to_html(
            index=False, border=0, float_format=lambda v: f"{v:.4g}", classes="nbflow-compare"
        )
        self.plot.value = _svg(self.compared)
        return self.compared

    def delete(self) -> None:
        """Ask before deleting the selected runs: `confirm` deletes them, `cancel` keeps them."""
        if not self.selected:
            self._say("Select the runs to delete.", error=True)
            return
        self._deleting = self.selected
        self._say(
            f"Delete {len(self._deleting)} run(s): {html.escape(', '.join(self._deleting))}? The result cache is kept."
        )
        self.confirmation.children = [self.confirm_button, self.cancel_button]

    def confirm(self) -> None:
        """Delete the runs `delete` asked about."""
        doomed, self._deleting = self._deleting, []
        self.confirmation.children = []
        if not doomed:
            self._say("Nothing to delete: select runs and press Delete first.", error=True)
            return
        gone = []
        for run_id in doomed:
            try:
                delete_run(run_id, self.store)
            except NbflowError as exc:
                # Deleted from another notebook since it was listed, say: the others still go.
                gone.append(html.escape(str(exc)))
        self.refresh()
        self._say(" ".join([f"Deleted {len(doomed) - len(gone)} run(s).", *gone]), error=bool(gone))

    def cancel(self) -> None:
        """Keep the runs `delete` asked about."""
        self._deleting = []
        self.confirmation.children = []
        self._say("Nothing deleted.")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        # Where widgets do not run (a saved notebook, GitHub), the table of runs still shows.
        bundle["text/html"] = _STYLE + self.size_label.value + self.table.value
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        n = len(self.run_ids)
        return f"RunsView({n} run{'' if n == 1 else 's'}, {len(self.selected)} selected)"

    # -- helpers --------------------------------------------------------------------------------

    def _offer_metrics(self) -> None:
        """The numeric outputs every selected run has (all listed runs' when none is selected)."""
        chosen = [self._outputs[r] for r in (self.selected or self.run_ids) if r in self._outputs]
        shared = [o for o in (chosen[0] if chosen else {}) if all(o in outputs for outputs in chosen)]
        current = self.metric.value
        self.metric.options = shared
        self.metric.value = current if current in shared else (shared[0] if shared else None)

    def _say(self, text: str, error: bool = False) -> None:
        colour = "#b00020" if error else "inherit"
        self.message.value = f"<div class='nbflow-runs-message' style='color:{colour}'>{text}</div>"


def _label(row: Any) -> str:
    started = row["started_at"].tz_convert(None).strftime("%Y-%m-%d %H:%M")
    return f"{row['name']} · {started} · {row['status']} · {row['points']} points · {row['run_id']}"


def _where(store: Path) -> str:
    """The store's folder, relative to the working directory (the notebook's) when it is inside it."""
    try:
        return str(store.relative_to(Path.cwd()))
    except ValueError:
        return str(store)


def _runs_table(listed: Any) -> str:
    shown = [c for c in listed.columns if c in _SHOWN or c.startswith(("best_", "min_", "max_"))]
    frame = listed[["run_id", *shown]].copy()
    # To the second, in UTC: the microseconds and offset widened the table by a third.
    frame["started_at"] = frame["started_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}", classes="nbflow-runs")


def _empty(store: Any) -> str:
    return f"<div class='nbflow-runs-empty'>No runs recorded in <code>{html.escape(_where(store))}</code> yet (or none match the filters). Every sweep records itself there as it ends.</div>"


def _svg(table: Any) -> str:
    try:
        from matplotlib import rc_context
        from matplotlib.figure import Figure
    except ImportError:
        return "<div>The plot needs matplotlib: pip install 'nbflow[plot]'.</div>"
    figure = Figure(figsize=(6.0, 3.6), dpi=72, layout="constrained")
    try:
        plot_comparison(table, ax=figure.add_subplot())
    except NbflowError as exc:
        return f"<div>No plot: {html.escape(str(exc))}</div>"
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "nbflow"}):
        figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :].replace("<svg ", '<svg class="nbflow-plot" ', 1)
