"""`SweepPanel`: a sweep's axes as controls, with Run, Cancel, progress, a live table, a plot and export.

The panel is a thin front over `Sweep`. Its controls make a grid (or, set to
"adaptive", the space of a `Search`); Run builds a `Sweep` over it and runs it on a background thread, so the kernel stays
free for other cells; the progress bar is the sweep's ``progress=`` hook, and
the table and plot are drawn from ``sweep.results``. Nothing here decides how
points run, fail, retry or cancel: `Sweep` does.
"""

from __future__ import annotations

import functools
import html
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets

from nbflow.errors import SweepError
from nbflow.parallel.registry import resolve_executor
from nbflow.sweeps.grids import Grid, grid
from nbflow.sweeps.naming import run_column
from nbflow.sweeps.runner import Sweep
from nbflow.sweeps.search import Search
from nbflow.widgets.axis_controls import AxisControl, control_for, controls_from_signature
from nbflow.widgets.panel_plot import metric_plot
from nbflow.widgets.progress import WidgetProgress

__all__ = ["SweepPanel"]

# Columns every sweep frame has that are not outputs of the target.
_BOOKKEEPING = ("status", "error", "attempts", "duration_s", "task_id")
_RESERVED = ("progress", "live")
# Chromium draws the options of an unfocused multi-select grey, as if disabled: a fully selected
# axis looked switched off. Selected options are drawn selected, focused or not.
_PANEL_STYLE = (
    "<style>.nbflow-sweep-panel select[multiple] option:checked{"
    "background:#1976d2 linear-gradient(0deg,#1976d2 0%,#1976d2 100%);color:#fff}</style>"
)
# Executors that take no n_jobs: an instance is made already, None is the application's.
_FIXED_CONCURRENCY = ("sequential", None)
# Named executors made here to read their default n_jobs (making a cluster's would connect to it).
_LOCAL_EXECUTORS = ("threads", "processes", "async")
# JupyterLab styles a DataFrame's own output, not a table inside an HTML widget; give it the basics.
_TABLE_STYLE = (
    "<style>.nbflow-sweep-table{border-collapse:collapse;font-size:12px}"
    ".nbflow-sweep-table th,.nbflow-sweep-table td{padding:2px 8px;text-align:right;border-bottom:1px solid #e0e0e0}"
    ".nbflow-sweep-table thead th{border-bottom:1px solid #999}</style>"
)


class SweepPanel:
    """Controls for a sweep's axes, a Run button that does not block the kernel, and its live results.

    Each axis spec becomes a control, following ipywidgets' ``interact``:
    ``(min, max)`` or ``(min, max, step)`` a range slider whose chosen ends and
    step give the values; ``(min, max, "log")`` or ``(min, max, step, "log")``
    two log sliders, one value every ``step`` decades (1 by default); a list a
    multi-select with everything selected; a bool a checkbox and a str a text
    field (one value each). With no specs, the controls come from the target's
    defaults (see `nbflow.widgets.axis_controls` for the rules).

    Set "adaptive" instead of "grid", the controls' ranges become a search space
    (a range is ``uniform`` or ``randint``, a log range ``loguniform``, selected
    options a ``choice``) and Run asks an Optuna study for each point (see
    `nbflow.optimize`): give the number of trials, the metric and min or max.

    The panel shows the grid size as the controls change, Run and Cancel, a
    progress bar, a plot of one metric against one axis, the results table, and
    an Export field. ``panel.results`` is the DataFrame; ``panel.sweep`` the
    last `Sweep`.

    Args:
        target: a function (called with one point's parameters), an action or a
            `RunnableGraph`, as `Sweep` takes it.
        sweep_options: more keyword arguments for `Sweep` (``executor``,
            ``on_error``, ``retries``, ``cache``, ``name``); the panel supplies
            ``progress`` and ``live`` itself.
        max_rows: the table shows at most this many rows (the latest).
        refresh_s: while running, redraw the table and plot at most this often.
        export_path: the path the Export field starts with.
        **axes: each axis name with its spec.

    Raises:
        SweepError: an axis is not a parameter of the target, a parameter has
            neither a default nor a spec, or a spec is malformed.
        TypeError: a spec no control fits, or a reserved sweep option.

    Example:
        >>> def train(lr, depth):
        ...     return {"loss": round((lr - 0.01) ** 2 + depth / 100, 6)}
        >>> panel = SweepPanel(train, lr=(1e-3, 1e-1, "log"), depth=[1, 2])
        >>> panel
        SweepPanel(train: lr 3 × depth 2 = 6 points)
        >>> panel.run()  # returns at once; the sweep runs on a background thread
        >>> panel.wait(timeout=60)["loss"].tolist()
        [0.010081, 0.020081, 0.01, 0.02, 0.0181, 0.0281]
    """

    def __init__(
        self,
        target: Any,
        *,
        sweep_options: dict | None = None,
        max_rows: int = 100,
        refresh_s: float = 0.5,
        export_path: str = "sweep_results.csv",
        **axes: Any,
    ) -> None:
        self.target = target
        self.sweep_options = dict(sweep_options or {})
        reserved = [k for k in _RESERVED if k in self.sweep_options]
        if reserved:
            msg = f"SweepPanel(sweep_options=...) can't set {reserved[0]!r}: the panel draws its own progress bar and table. Leave it out, or use Sweep(...) directly."
            raise TypeError(msg)
        self.max_rows = max_rows
        self.refresh_s = refresh_s
        self.controls: dict[str, AxisControl] = (
            {name: control_for(name, spec) for name, spec in axes.items()}
            if axes
            else controls_from_signature(target)
        )
        # Building a Sweep checks the axes against the target now, not when Run is pressed.
        Sweep(target, self.grid(), progress=False, live=False, **self.sweep_options)
        self.name = self.sweep_options.get("name") or getattr(target, "__name__", None) or "sweep"

        self.sweep: Sweep | None = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._runs = 0
        self._cancel_requested = False
        self._started = 0.0
        self._drawn = 0.0
        self._frame: Any = None
        self._quiet = False

        self._build_widgets(export_path, self.sweep_options.pop("n_jobs", None))
        for control in self.controls.values():
            control.observe(self._update_size)
        self._update_size()

    # -- the widgets ---------------------------------------------------------------------------

    def _build_widgets(self, export_path: str, n_jobs: int | None) -> None:
        self.size_label = ipywidgets.HTML()
        self.run_button = ipywidgets.Button(description="Run", icon="play", button_style="success")
        self.cancel_button = ipywidgets.Button(description="Cancel", icon="stop", disabled=True)
        self.progress = ipywidgets.IntProgress(value=0, min=0, max=1, description="progress")
        self.status = ipywidgets.HTML("Not run yet.")
        self.metric_dropdown = ipywidgets.Dropdown(description="metric", options=[])
        self.axis_dropdown = ipywidgets.Dropdown(description="against", options=list(self.controls))
        self.plot = ipywidgets.HTML("<div class='nbflow-plot-empty'>Run the sweep to plot a metric.</div>")
        # A long table scrolls inside its box rather than pushing the export field off screen.
        self.table = ipywidgets.HTML(layout=ipywidgets.Layout(max_height="360px", overflow="auto"))
        self.export_path = ipywidgets.Text(value=export_path, description="export to")
        self.export_button = ipywidgets.Button(description="Export", icon="download")
        self.export_status = ipywidgets.HTML()
        # Grid, or an adaptive search over the controls' ranges (and then its budget and goal).
        self.search_mode = ipywidgets.ToggleButtons(
            options=["grid", "adaptive"], value="grid", description="search"
        )
        hidden = ipywidgets.Layout(display="none")
        self.n_trials = ipywidgets.BoundedIntText(
            value=20,
            min=1,
            max=1_000_000,
            description="trials",
            layout=ipywidgets.Layout(width="160px", display="none"),
        )
        self.objective = ipywidgets.Text(
            description="optimize", placeholder="metric, e.g. loss", layout=hidden
        )
        self.direction = ipywidgets.Dropdown(
            options=["min", "max"], value="min", layout=ipywidgets.Layout(width="80px", display="none")
        )
        self.search_mode.observe(lambda change: self._mode_changed(), names="value")
        for field in (self.n_trials, self.objective, self.direction):
            field.observe(lambda change: self._update_size(), names="value")
        executor = self.sweep_options.get("executor", "threads")
        fixed = not isinstance(executor, str) or executor in _FIXED_CONCURRENCY
        # A cluster's executor sizes what it keeps in flight from the cluster itself: the panel
        # leaves that alone (and hides the field) unless n_jobs was given.
        cluster = not fixed and executor not in _LOCAL_EXECUTORS and n_jobs is None
        # How many points run at once, given to Sweep(n_jobs=...) on each Run.
        self.n_jobs = ipywidgets.BoundedIntText(
            value=n_jobs or (1 if fixed or cluster else _default_n_jobs(executor)),
            min=1,
            max=1024,
            description="n_jobs",
            disabled=fixed or cluster,
            layout=ipywidgets.Layout(width="140px", display="none" if cluster else None),
            style={"description_width": "50px"},
        )

        self.run_button.on_click(self._on_run)
        self.cancel_button.on_click(lambda button: self.cancel())
        self.export_button.on_click(self._on_export)
        self.metric_dropdown.observe(lambda change: self._draw_plot(), names="value")
        self.axis_dropdown.observe(lambda change: self._draw_plot(), names="value")

        for widget, css in (
            (self.run_button, "nbflow-run"),
            (self.cancel_button, "nbflow-cancel"),
            (self.progress, "nbflow-progress"),
            (self.status, "nbflow-status"),
            (self.size_label, "nbflow-size"),
            (self.table, "nbflow-table"),
            (self.plot, "nbflow-plot"),
        ):
            widget.add_class(css)
        self.table.value = self._table_html(self.results)
        self.widget = ipywidgets.VBox(
            [
                ipywidgets.HTML(f"{_PANEL_STYLE}<b>Sweep of {html.escape(self.name)}</b>"),
                ipywidgets.VBox([c.widget for c in self.controls.values()]),
                ipywidgets.HBox([self.search_mode, self.n_trials, self.objective, self.direction]),
                ipywidgets.HBox([self.size_label, self.n_jobs, self.run_button, self.cancel_button]),
                ipywidgets.HBox([self.progress, self.status]),
                ipywidgets.HBox([self.metric_dropdown, self.axis_dropdown]),
                self.plot,
                self.table,
                ipywidgets.HBox([self.export_path, self.export_button, self.export_status]),
            ]
        )
        self.widget.add_class("nbflow-sweep-panel")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        # The widget's own text repr lists its children with their model ids, which change every run.
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        g = self.grid()
        sizes = " × ".join(f"{name} {len(c.values())}" for name, c in self.controls.items())
        return f"SweepPanel({self.name}: {sizes} = {len(g)} point{'' if len(g) == 1 else 's'})"

    # -- the public face -------------------------------------------------------------------------

    def grid(self) -> Grid:
        """The grid the controls give now."""
        return grid(**{name: control.values() for name, control in self.controls.items()})

    @property
    def adaptive(self) -> bool:
        """Whether Run searches adaptively (the "adaptive" toggle) rather than running the grid."""
        return self.search_mode.value == "adaptive"

    def search(self) -> Search:
        """The adaptive search the controls give now.

        Raises:
            SweepError: no metric named, or a control that gives no values.
        """
        metric = self.objective.value.strip()
        if not metric:
            msg = f"The sweep panel for {self.name} needs the metric to optimize: type the name of an output of {self.name} (e.g. loss) in the 'optimize' field."
            raise SweepError(msg)
        space = {name: control.distribution() for name, control in self.controls.items()}
        return Search(space, n_trials=self.n_trials.value, metric=metric, mode=self.direction.value)

    @property
    def running(self) -> bool:
        """Whether a sweep is running now."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def results(self) -> Any:
        """The last sweep's DataFrame (so far, while it runs); an empty frame before the first run."""
        if self.sweep is None:
            from nbflow.sweeps.results import ResultTable

            return ResultTable(list(self.controls)).frame()
        return self.sweep.results

    def run(self) -> None:
        """Start a sweep over the grid the controls give, on a background thread, and return at once.

        Raises:
            SweepError: a sweep is already running, or the controls select no points.
        """
        if self.running:
            msg = f"The sweep panel for {self.name} is already running; call panel.wait() for it to finish, or panel.cancel() to stop it."
            raise SweepError(msg)
        empty = [name for name, c in self.controls.items() if not c.values()]
        if empty:
            msg = f"The sweep panel for {self.name} has no points to run: axis {empty[0]!r} has no values selected. Select at least one."
            raise SweepError(msg)
        progress = functools.partial(WidgetProgress, self.progress, on_update=self._progressed)
        options = dict(self.sweep_options)
        if not self.n_jobs.disabled:
            options["n_jobs"] = self.n_jobs.value
        if self.adaptive:
            points: Any = None
            options["search"] = self.search()
        else:
            points = self.grid()
        sweep = Sweep(self.target, points, progress=progress, live=False, **options)
        self._runs += 1
        self.sweep, self.error, self._cancel_requested = sweep, None, False
        self._started = time.monotonic()
        self.run_button.disabled, self.cancel_button.disabled = True, False
        self.status.value = f"Run {self._runs}: starting {len(sweep)} points…"
        self.export_status.value = ""  # it spoke of the last run's results
        # A thread, not a process: the target and its results stay in this kernel, and the cell returns.
        self._thread = threading.Thread(
            target=self._work, args=(sweep,), name=f"nbflow-sweep-panel-{self._runs}", daemon=True
        )
        self._thread.start()

    def cancel(self) -> None:
        """Stop the running sweep: finished points stay in the results, the others become ``cancelled`` rows."""
        if not self.running or self.sweep is None:
            return
        self._cancel_requested = True
        self.sweep.cancel()
        self.cancel_button.disabled = True
        self.status.value = f"Run {self._runs}: cancelling…"

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the current sweep ends, then return ``panel.results``.

        Args:
            timeout: give up after this many seconds (None waits for as long as it takes).

        Raises:
            TimeoutError: the sweep still runs after ``timeout`` seconds.
            Exception: whatever the sweep raised (e.g. `TaskFailed` with ``on_error="raise"``).
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                msg = f"The sweep panel for {self.name} still runs after {timeout} s; wait longer, or call panel.cancel() to stop it."
                raise TimeoutError(msg)
        if self.error is not None:
            raise self.error
        return self.results

    def export(self, path: str | Path | None = None) -> Path:
        """Write the results with their provenance (``df.nbflow.export``); the format follows the extension.

        Args:
            path: where to write (``.csv``, ``.json`` or ``.parquet``); the Export field's path by default.

        Raises:
            SweepError: there are no results yet.
        """
        return self._export(path)[0]

    def _export(self, path: str | Path | None) -> tuple[Path, Any]:
        """Where it wrote, and the frame it wrote (taken once: a running sweep's grows meanwhile)."""
        if self.sweep is None:
            msg = f"The sweep panel for {self.name} has no results to export yet: press Run (or call panel.run()) first."
            raise SweepError(msg)
        import nbflow.sweeps.export  # noqa: F401  (registers the df.nbflow accessor)

        frame = self.results
        return frame.nbflow.export(path if path is not None else self.export_path.value), frame

    # -- running ----------------------------------------------------------------------------------

    def _on_run(self, button: Any) -> None:
        # A button callback's exception would go to the kernel log, where nobody sees it.
        try:
            self.run()
        except Exception as exc:
            self.status.value = _error_html(exc)

    def _on_export(self, button: Any) -> None:
        try:
            path, frame = self._export(None)
        except Exception as exc:
            self.export_status.value = _error_html(exc)
            return
        statuses = _summary(_status_counts(frame))
        rows = f"{len(frame)} row{'' if len(frame) == 1 else 's'}"
        self.export_status.value = f"Wrote {html.escape(str(path))}: {rows}" + (
            f" ({statuses})." if statuses else "."
        )

    def _work(self, sweep: Sweep) -> None:
        try:
            sweep.run()
        except Exception as exc:
            self.error = exc
        finally:
            self._draw(sweep.results, final=True)
            self.run_button.disabled = not len(self.grid())
            self.cancel_button.disabled = True

    def _progressed(self, progress: WidgetProgress) -> None:
        # Runs on the sweep's thread. A Cancel pressed before the sweep had registered its run
        # reached nobody; now the run exists, so say it again.
        if self._cancel_requested and self.sweep is not None:
            self.sweep.cancel()
        now = time.monotonic()
        if progress.closed or now - self._drawn < self.refresh_s:
            return
        self._drawn = now
        self._draw(self.sweep.results, final=False, progress=progress)

    # -- drawing ----------------------------------------------------------------------------------

    def _mode_changed(self) -> None:
        shown = None if self.adaptive else "none"
        for field in (self.n_trials, self.objective, self.direction):
            field.layout.display = shown
        self._update_size()

    def _update_size(self) -> None:
        g = self.grid()
        if self.adaptive:
            trials = self.n_trials.value
            goal = f"{self.direction.value} {html.escape(self.objective.value.strip() or '?')}"
            parts = ", ".join(html.escape(name) for name in self.controls)
            self.size_label.value = (
                f"<b>{trials} trial{'' if trials == 1 else 's'}</b> (TPE over {parts}; {goal})"
            )
        else:
            parts = " × ".join(f"{html.escape(name)} {len(c.values())}" for name, c in self.controls.items())
            self.size_label.value = f"<b>{len(g)} point{'' if len(g) == 1 else 's'}</b> ({parts})"
        self.run_button.disabled = self.running or not len(g)

    def _draw(self, frame: Any, *, final: bool, progress: WidgetProgress | None = None) -> None:
        self._frame = frame
        counts = _status_counts(frame)
        done = sum(n for status, n in counts.items() if status != "cancelled")
        total = len(self.sweep) if self.sweep is not None else 0
        summary = _summary(counts)
        elapsed = time.monotonic() - self._started
        # The status goes last: once it says finished, the table and plot show the final rows.
        self.table.value = self._table_html(frame)
        self._update_metrics(frame)
        self._draw_plot()
        if not final:
            self.status.value = f"Run {self._runs}: {done} of {total} points · {summary} · {elapsed:.1f} s"
        elif self.error is not None:
            self.status.value = (
                f"Run {self._runs} failed after {done} of {total} points: {_error_html(self.error)}"
            )
        else:
            verb = "cancelled" if counts.get("cancelled") else "finished"
            self.status.value = (
                f"Run {self._runs} {verb}: {done} of {total} points · {summary} · {elapsed:.1f} s"
            )

    def _table_html(self, frame: Any) -> str:
        shown = frame.tail(self.max_rows) if len(frame) > self.max_rows else frame
        caption = f"{len(frame)} rows" + (
            f", the last {self.max_rows} shown" if len(frame) > self.max_rows else ""
        )
        # A missing error or output reads better as an empty cell than as "None".
        shown = shown.assign(
            **{c: shown[c].where(shown[c].notna(), "") for c in shown.columns if shown[c].dtype == object}
        )
        table = shown.to_html(
            index=False, classes="nbflow-sweep-table", na_rep="", border=0, float_format="{:.4g}".format
        )
        return f"{_TABLE_STYLE}<div class='nbflow-table-caption'>{caption}</div>{table}"

    def _update_metrics(self, frame: Any) -> None:
        import pandas as pd

        if frame.empty and self.metric_dropdown.options:
            # A new run has no outputs yet: keep the last run's metrics, and the one the user chose,
            # rather than narrow them to duration_s and lose the choice.
            return

        outputs = [
            c
            for c in frame.columns
            if c not in self.controls
            and c not in _BOOKKEEPING
            and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
        ]
        options = [*outputs, "duration_s"] if "duration_s" in frame.columns else outputs
        if list(self.metric_dropdown.options) != options:
            current = self.metric_dropdown.value
            # Replacing the options fires value changes; the caller draws the plot once, after.
            self._quiet = True
            try:
                self.metric_dropdown.options = options
                # An output of the target beats duration_s, which is all an empty frame offers.
                if current in outputs:
                    self.metric_dropdown.value = current
                else:
                    self.metric_dropdown.value = options[0] if options else None
            finally:
                self._quiet = False

    def _draw_plot(self) -> None:
        metric, axis = self.metric_dropdown.value, self.axis_dropdown.value
        if self._quiet or self._frame is None or metric is None or axis is None:
            return
        control = self.controls.get(axis)
        self.plot.value = metric_plot(
            self._frame,
            metric,
            axis,
            list(self.controls),
            log_x=control is not None and control.kind == "log",
        )


def _status_counts(frame: Any) -> dict[str, int]:
    """Rows by status, from the status column wherever the frame put it (an output may be "status")."""
    column = run_column(frame, "status")
    return frame[column].value_counts().to_dict() if len(frame) and column in frame.columns else {}


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _default_n_jobs(executor: str) -> int:
    """What the local executor named runs at once by default."""
    made = resolve_executor(executor)
    return getattr(made, "n_jobs", None) or made.max_concurrency


def _error_html(exc: BaseException) -> str:
    return f"<span style='color:#c0392b'>{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>"
