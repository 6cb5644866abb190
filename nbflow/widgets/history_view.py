"""`HistoryView`: step through what a `LocalTracker` recorded of an application and its sub-applications.

Pick an application, move the slider over its steps, and read the step's
action, timing and inputs, and its state diff: each key it wrote or deleted
with the value before and after. A step that raised shows the state it started
from and its traceback instead. Sub-applications are named by what they ran and
with what, ``train(lr=0.01, depth=3)``, and "failed only" lists just those with a
step that raised. Everything comes from the tracker's public reads (``app_ids``,
``children``, ``steps``, ``app``) and `state_at`.
"""

from __future__ import annotations

import datetime as dt
import html
import reprlib
from typing import Any

import ipywidgets

from nbflow.persistence.tracking import LocalTracker, state_at

__all__ = ["HistoryView"]

_VALUE = reprlib.Repr()
_VALUE.maxstring = 80
_VALUE.maxother = 80
_VALUE.maxlist = _VALUE.maxtuple = _VALUE.maxdict = _VALUE.maxset = 8
_ABSENT = object()
_LABEL = reprlib.Repr()
_LABEL.maxstring = _LABEL.maxother = 24
_LABEL.maxlist = _LABEL.maxtuple = _LABEL.maxdict = _LABEL.maxset = 3
# A label names at most this many of a sub-application's starting keys.
_LABEL_KEYS = 4


def _labels(children: list[dict]) -> list[str]:
    """``train(lr=0.01, depth=3)``: the first action each sub-application ran, and what it started from.

    Only the keys whose values differ between the tasks of one parent step are named, when some
    do: those are each task's parameters, and the rest is the state every task of it carries.
    """
    steps: dict[Any, list[dict]] = {}
    for child in children:
        steps.setdefault(child["parent_sequence_id"], []).append(child)
    shown: dict[Any, list] = {}
    for step, tasks in steps.items():
        keys = list(dict.fromkeys(k for c in tasks for k in c["initial_state"] if not str(k).startswith("_")))
        # Compared by their short repr: a task's whole state (a large array, say) is not read in full.
        varying = [
            k for k in keys if len({_VALUE.repr(c["initial_state"].get(k, _ABSENT)) for c in tasks}) > 1
        ]
        shown[step] = varying or keys
    return [_label(child, shown[child["parent_sequence_id"]]) for child in children]


def _label(child: dict, keys: list) -> str:
    values = {k: child["initial_state"][k] for k in keys if k in child["initial_state"]}
    shown = [f"{k}={_LABEL.repr(v)}" for k, v in list(values.items())[:_LABEL_KEYS]]
    if len(values) > _LABEL_KEYS:
        shown.append("…")
    failed = " ✗ failed" if child["failed"] else ""
    return f"{child['action'] or 'not started'}({', '.join(shown)}){failed}"


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "<i>(absent)</i>"
    if isinstance(value, dict) and set(value) == {"__repr__"}:
        # The tracker keeps values JSON can't hold as their repr.
        return f"<code>{html.escape(value['__repr__'][:200])}</code>"
    return f"<code>{html.escape(_VALUE.repr(value))}</code>"


def _table(header: tuple[str, ...] | None, rows: list[tuple[str, ...]], css: str) -> str:
    head = (
        "<thead><tr>" + "".join(f"<th style='text-align:left'>{h}</th>" for h in header) + "</tr></thead>"
        if header
        else ""
    )
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{cell}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table class='{css}'>{head}<tbody>{body}</tbody></table>"


class HistoryView:
    """Browse the tracked steps of an application and its sub-applications, with each step's state diff.

    Args:
        app_id: the application to start from; the dropdown lists it and its
            sub-applications, recursively. None lists every top-level
            application the tracker holds, each with its sub-applications.
        tracker: the `LocalTracker` that recorded the runs.

    Raises:
        NotRecordedError: the tracker has no application ``app_id``.
        TypeError: ``tracker`` is not a `LocalTracker`.

    Example:
        >>> import tempfile
        >>> from nbflow import ApplicationBuilder, LocalTracker, action
        >>> @action(reads=["n"], writes=["n"])
        ... def bump(state):
        ...     return state.update(n=state["n"] + 1)
        >>> tracker = LocalTracker("doc", storage_dir=tempfile.mkdtemp())
        >>> app = (ApplicationBuilder().with_actions(bump=bump).with_transitions(("bump", "bump"))
        ...        .with_state(n=0).with_entrypoint("bump").with_identifiers(app_id="counter")
        ...        .with_tracker(tracker).build())
        >>> _ = app.run(halt_after=["bump"])
        >>> view = HistoryView("counter", tracker=tracker)
        >>> view
        HistoryView('counter': 1 application, 1 step)
        >>> "<code>0</code>" in view.diff.value and "<code>1</code>" in view.diff.value
        True
    """

    def __init__(self, app_id: str | None = None, *, tracker: LocalTracker) -> None:
        if not isinstance(tracker, LocalTracker):
            msg = f"HistoryView(tracker=...) takes the LocalTracker that recorded the runs, got {type(tracker).__name__}. Pass e.g. tracker=LocalTracker('project')."
            raise TypeError(msg)
        self.tracker = tracker
        self.app_id = app_id
        if app_id is not None:
            tracker.app(app_id)  # raises NotRecordedError naming the applications it does have
        self._steps: list[dict] = []
        self._info: dict = {}
        self._quiet = False

        self.app_dropdown = ipywidgets.Dropdown(description="application", layout={"width": "auto"})
        self.refresh_button = ipywidgets.Button(description="Refresh", icon="refresh")
        self.failed_only = ipywidgets.Checkbox(description="failed only", indent=False)
        self.step_slider = ipywidgets.IntSlider(description="step", min=0, max=0, continuous_update=True)
        self.summary = ipywidgets.HTML()
        self.inputs = ipywidgets.HTML()
        self.diff = ipywidgets.HTML()
        self.widget = ipywidgets.VBox(
            [
                ipywidgets.HBox([self.app_dropdown, self.failed_only, self.refresh_button]),
                self.step_slider,
                self.summary,
                ipywidgets.HBox([self.inputs, self.diff], layout={"grid_gap": "24px"}),
            ]
        )
        self.widget.add_class("nbflow-history-view")

        self.app_dropdown.observe(lambda change: self._load_app(), names="value")
        self.step_slider.observe(lambda change: self._show_step(), names="value")
        self.refresh_button.on_click(lambda button: self.refresh())
        self.failed_only.observe(lambda change: self.refresh(), names="value")
        self.refresh()

    # -- the public face -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the tracker again: applications and steps recorded since appear."""
        current = self.app_dropdown.value
        options = self._tree()
        ids = [value for _, value in options]
        # New options fire value changes on the way; load the application once, after.
        self._quiet = True
        try:
            self.app_dropdown.options = options
            self.app_dropdown.value = current if current in ids else (ids[0] if ids else None)
        finally:
            self._quiet = False
        self._load_app()

    @property
    def app_ids(self) -> list[str]:
        """The applications the dropdown offers, parents before their children."""
        return [value for _, value in self.app_dropdown.options]

    @property
    def step(self) -> dict | None:
        """The step shown now (as `LocalTracker.steps` gives it), or None when the application has none."""
        for step in self._steps:
            if step["sequence_id"] == self.step_slider.value:
                return step
        return None

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        # The widget's own text repr holds model ids and timings, which change every run.
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        apps, steps = len(self.app_ids), len(self._steps)
        shown = repr(self.app_dropdown.value) if self.app_dropdown.value is not None else "nothing"
        return f"HistoryView({shown}: {apps} application{'' if apps == 1 else 's'}, {steps} step{'' if steps == 1 else 's'})"

    # -- reading the tracker -------------------------------------------------------------------

    def _tree(self) -> list[tuple[str, str]]:
        roots = [self.app_id] if self.app_id is not None else self.tracker.app_ids()
        options: list[tuple[str, str]] = []
        # Depth first, so each sub-application sits under its parent; a stack, not recursion,
        # because a map of thousands of tasks is wide and nested maps could be deep.
        stack = [(root, root, 0) for root in reversed(roots)]
        while stack:
            app_id, name, depth = stack.pop()
            # Non-breaking spaces: a browser collapses ordinary leading spaces in a <select>.
            label = "\u00a0\u00a0" * depth + ("↳ " if depth else "") + name
            options.append((label, app_id))
            children = self.tracker.children(app_id)
            # Named among all their siblings, then filtered: a label does not change with the filter.
            named = list(zip(children, _labels(children), strict=True))
            if self.failed_only.value:
                named = [(c, label) for c, label in named if c["failed"]]
            stack.extend((c["app_id"], label, depth + 1) for c, label in reversed(named))
        return options

    def _load_app(self) -> None:
        if self._quiet:
            return
        app_id = self.app_dropdown.value
        self._steps = self.tracker.steps(app_id) if app_id is not None else []
        self._info = self.tracker.app(app_id) if app_id is not None else {}
        slider = self.step_slider
        if not self._steps:
            slider.disabled = True
            with slider.hold_trait_notifications():
                slider.min, slider.max, slider.value = 0, 0, 0
            self._show_step()
            return
        low, high = self._steps[0]["sequence_id"], self._steps[-1]["sequence_id"]
        slider.disabled = False
        # An IntSlider refuses min > max at every moment, so move the bound that makes room first.
        if low > slider.max:
            slider.max, slider.min = high, low
        else:
            slider.min, slider.max = low, high
        if slider.value == low:
            self._show_step()  # no value change, so no event: draw it here
        else:
            slider.value = low

    # -- drawing ----------------------------------------------------------------------------------

    def _show_step(self) -> None:
        step = self.step
        if step is None:
            what = "no recorded steps" if not self._steps else f"no step {self.step_slider.value} recorded"
            self.summary.value = f"<i>{html.escape(str(self.app_dropdown.value))}: {what}.</i>"
            self.inputs.value = self.diff.value = ""
            return
        self.summary.value = self._summary_html(step)
        self.inputs.value = "<b>Inputs</b>" + (
            _table(
                ("input", "value"),
                [(html.escape(k), _show(v)) for k, v in step["inputs"].items()],
                "nbflow-inputs",
            )
            if step["inputs"]
            else "<div><i>none</i></div>"
        )
        self.diff.value = "<b>State diff</b>" + self._diff_html(step)

    def _summary_html(self, step: dict) -> str:
        started = dt.datetime.fromtimestamp(step["started_at"], dt.timezone.utc)
        position = next(i for i, s in enumerate(self._steps) if s is step) + 1
        rows = [
            ("action", f"<b>{html.escape(step['action'])}</b>"),
            ("step", f"sequence id {step['sequence_id']} ({position} of {len(self._steps)})"),
            ("started", started.isoformat(timespec="milliseconds").replace("+00:00", "Z")),
            ("took", f"{step['duration_s'] * 1000:.1f} ms"),
        ]
        parent = self._info.get("parent_app_id")
        if parent is not None:
            rows.append(("parent", f"{html.escape(parent)}, step {self._info['parent_sequence_id']}"))
        if step["exception"] is not None:
            rows.append(("raised", f"<span style='color:#c0392b'>{html.escape(step['exception'])}</span>"))
        return _table(None, rows, "nbflow-step")

    def _before(self, step: dict) -> dict:
        index = next(i for i, s in enumerate(self._steps) if s is step)
        if index == 0:
            return dict(self._info.get("initial_state", {}))
        return state_at(
            self.app_dropdown.value, self._steps[index - 1]["sequence_id"], self.tracker
        ).get_all()

    def _diff_html(self, step: dict) -> str:
        if step["exception"] is not None:
            # What the step started from, and where it failed: its inputs are beside this.
            before = self._before(step)
            rows = [
                (html.escape(str(k)), _show(v)) for k, v in sorted(before.items(), key=lambda kv: str(kv[0]))
            ]
            state = _table(("key", "value"), rows, "nbflow-before") if rows else "<div><i>empty</i></div>"
            trace = html.escape(step.get("traceback") or step["exception"])
            return (
                "<div><i>The step raised, so the state stayed as it was.</i></div>"
                f"<b>State before</b>{state}<b>Traceback</b><pre class='nbflow-traceback'>{trace}</pre>"
            )
        if not step["written"] and not step["deleted"]:
            return "<div><i>The step changed no keys.</i></div>"
        before = self._before(step)
        # Sorted: the engine records written keys in set order, which changes from one process to the next.
        rows = [
            (html.escape(key), _show(before.get(key, _ABSENT)), _show(step["written"][key]))
            for key in sorted(step["written"])
        ]
        rows += [
            (html.escape(key), _show(before.get(key, _ABSENT)), "<i>(deleted)</i>")
            for key in sorted(step["deleted"])
        ]
        return _table(("key", "before", "after"), rows, "nbflow-diff")
