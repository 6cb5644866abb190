"""Axis controls: how a `SweepPanel` turns an axis spec, or a parameter's default, into a widget.

The specs follow the abbreviations of ipywidgets' ``interact``, read as sets of
values to sweep rather than as one value:

================================  ==========================================  ==========================
spec                              control                                     values swept
================================  ==========================================  ==========================
``(min, max)``                    IntRangeSlider (ints) or FloatRangeSlider   every ``step`` from the
``(min, max, step)``              (floats); both ends selected at first       lower end to the upper
                                                                              end; step 1 for ints,
                                                                              (max - min) / 10 for floats
``(min, max, "log")``             two FloatLogSliders (from, to)              one value per ``step``
``(min, max, step, "log")``                                                   decades (powers of ten),
                                                                              step 1 by default
a list, a range or another        SelectMultiple, every option selected       the selected options,
iterable; a dict                  (a dict's keys are the labels)              in their order
``True`` / ``False``              Checkbox                                    ``[value]``
a str                             Text                                        ``[text]``
an int or a float                 a range slider around it (as ``interact``   ``[value]`` at first
                                  does: ``[-v, 3v]``, or ``[0, 1]`` for 0),
                                  both ends at the value
================================  ==========================================  ==========================

A tuple of numbers is a range, so a set of numbers is written as a list. With
no specs at all, the panel reads the target's signature and treats each
parameter's default as a spec (a list default gives a multi-select). A
parameter whose default is anything else (None, an object) gets no control
and keeps its default; a parameter without a default needs a spec.
"""

from __future__ import annotations

import inspect
import math
import numbers
import reprlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ipywidgets

from nbflow.core.actions import Action
from nbflow.errors import SweepError
from nbflow.parallel.tasks import RunnableGraph
from nbflow.sweeps.distributions import Distribution, choice, loguniform, randint, uniform

__all__ = ["AxisControl", "control_for", "controls_from_signature"]

_LABEL = reprlib.Repr()
_LABEL.maxstring = 40
_LABEL.maxother = 40

# Float steps accumulate rounding error; 12 significant digits turn 0.30000000000000004 back into 0.3.
_DIGITS = 12
_FLOAT_INTERVALS = 10


def _tidy(value: float) -> float:
    return float(f"{value:.{_DIGITS}g}")


def _count_steps(low: float, high: float, step: float) -> int:
    # The small slack keeps (0.3 - 0.0) / 0.1 = 2.9999999999999996 from losing its last point.
    return max(math.floor((high - low) / step + 1e-9), -1) + 1


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class AxisControl:
    """One axis of a sweep panel: the widget the user sets, and the values it stands for.

    Attributes:
        name: the axis (the target's parameter).
        widget: the ipywidgets control to display.
        kind: ``"range"``, ``"log"``, ``"choice"`` or ``"fixed"``.
    """

    kind = "fixed"

    def __init__(self, name: str, widget: ipywidgets.Widget) -> None:
        self.name = name
        self.widget = widget

    def values(self) -> list:
        """The values the axis sweeps, as the control is set now."""
        raise NotImplementedError

    def distribution(self) -> Distribution:
        """What an adaptive search draws the axis from, as the control is set now: its values."""
        return choice(self.values())

    def observe(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever the values may have changed."""
        self.widget.observe(lambda change: callback(), names="value")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self.values())} values>"


class RangeControl(AxisControl):
    """A range slider; the axis is every ``step`` from the lower end to the upper end."""

    kind = "range"

    def __init__(self, name: str, low: float, high: float, step: float | None, value: tuple | None = None):
        integer = isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int))
        if step is None:
            step = 1 if integer else (high - low) / _FLOAT_INTERVALS
        if step <= 0:
            msg = f"Axis {name!r}: the step of ({low!r}, {high!r}, {step!r}) must be positive, e.g. ({low!r}, {high!r}, {abs(step) or 1!r})."
            raise SweepError(msg)
        self.step = step
        self.integer = integer
        if integer:
            widget = ipywidgets.IntRangeSlider(min=low, max=high, step=step)
        else:
            # A readout with 3 significant digits shows 0.001 and 250.0 alike; the default '.2f' would not.
            widget = ipywidgets.FloatRangeSlider(
                min=float(low), max=float(high), step=float(step), readout_format=".4"
            )
        widget.value = value if value is not None else (low, high)
        widget.description = name
        widget.continuous_update = False
        super().__init__(name, widget)

    def distribution(self) -> Distribution:
        low, high = self.widget.value
        return randint(low, high) if self.integer else uniform(low, high)

    def values(self) -> list:
        low, high = self.widget.value
        if self.integer:
            return list(range(low, high + 1, self.step))
        return [_tidy(low + i * self.step) for i in range(_count_steps(low, high, self.step))]


class LogRangeControl(AxisControl):
    """Two log sliders (from, to); the axis is one value every ``step`` decades between them."""

    kind = "log"

    def __init__(self, name: str, low: float, high: float, step: float = 1.0):
        if not (_is_number(low) and _is_number(high) and low > 0 and high > 0):
            msg = f"Axis {name!r}: a log range needs positive ends, got ({low!r}, {high!r}, 'log'). Use e.g. (1e-4, 1e-1, 'log'), or a linear range ({low!r}, {high!r})."
            raise SweepError(msg)
        if not (_is_number(step) and step > 0):
            msg = f"Axis {name!r}: the step of a log range is in decades and must be positive, got {step!r}. Use e.g. ({low!r}, {high!r}, 0.5, 'log') for two values per decade."
            raise SweepError(msg)
        self.step = float(step)
        lo, hi = math.log10(low), math.log10(high)
        self.low = ipywidgets.FloatLogSlider(
            value=low, base=10, min=lo, max=hi, step=self.step, description=name, readout_format=".4"
        )
        self.high = ipywidgets.FloatLogSlider(
            value=high, base=10, min=lo, max=hi, step=self.step, description="to", readout_format=".4"
        )
        for slider in (self.low, self.high):
            slider.continuous_update = False
        # There is no log range slider: keep the two ends ordered by pushing the other one along.
        self.low.observe(self._keep_order, names="value")
        self.high.observe(self._keep_order, names="value")
        super().__init__(name, ipywidgets.HBox([self.low, self.high]))

    def _keep_order(self, change: dict) -> None:
        if self.low.value > self.high.value:
            if change["owner"] is self.low:
                self.high.value = self.low.value
            else:
                self.low.value = self.high.value

    def observe(self, callback: Callable[[], None]) -> None:
        for slider in (self.low, self.high):
            slider.observe(lambda change: callback(), names="value")

    def distribution(self) -> Distribution:
        return loguniform(self.low.value, self.high.value)

    def values(self) -> list:
        lo, hi = math.log10(self.low.value), math.log10(self.high.value)
        return [_tidy(10 ** (lo + i * self.step)) for i in range(_count_steps(lo, hi, self.step))]


class ChoiceControl(AxisControl):
    """A multi-select over the options; the axis is the selected ones, in their order."""

    kind = "choice"

    def __init__(self, name: str, options: list, labels: list[str] | None = None):
        if not options:
            msg = f"Axis {name!r} has no options to choose from; give at least one value, e.g. {name}=[...]."
            raise SweepError(msg)
        self.options = list(options)
        labels = labels or [v if isinstance(v, str) else _LABEL.repr(v) for v in self.options]
        # Selection goes by position (`index`), so equal-looking or unhashable options stay apart.
        widget = ipywidgets.SelectMultiple(
            options=list(zip(labels, range(len(self.options)), strict=True)),
            rows=min(len(self.options), 6),
            description=name,
        )
        widget.index = tuple(range(len(self.options)))
        super().__init__(name, widget)

    def values(self) -> list:
        return [self.options[i] for i in sorted(self.widget.index)]


class FixedControl(AxisControl):
    """A checkbox or a text field: the axis is the one value it holds."""

    def __init__(self, name: str, value: bool | str):
        if isinstance(value, bool):
            widget = ipywidgets.Checkbox(value=value, description=name, indent=True)
        else:
            widget = ipywidgets.Text(value=value, description=name, continuous_update=False)
        super().__init__(name, widget)

    def values(self) -> list:
        return [self.widget.value]


def _around(value: float) -> tuple[float, float]:
    # The range ipywidgets' interact gives a bare int or float.
    if value == 0:
        return (0, 1) if isinstance(value, int) else (0.0, 1.0)
    return (-value, 3 * value) if value > 0 else (3 * value, -value)


def control_for(name: str, spec: Any) -> AxisControl:
    """The control for one axis spec (see the module docstring for the forms).

    Raises:
        SweepError: the spec is a malformed range or names no values.
        TypeError: no control fits the spec.
    """
    if isinstance(spec, AxisControl):
        return spec
    if isinstance(spec, (bool, str)):
        return FixedControl(name, spec)
    if _is_number(spec):
        low, high = _around(spec)
        return RangeControl(name, low, high, None, value=(spec, spec))
    if isinstance(spec, tuple) and spec and spec[-1] == "log":
        return _log_spec(name, spec)
    if isinstance(spec, tuple) and len(spec) in (2, 3) and all(_is_number(v) for v in spec):
        low, high, *step = spec
        if high < low:
            msg = f"Axis {name!r}: the range ({low!r}, {high!r}) runs backwards. Write ({high!r}, {low!r}), or a list [{low!r}, {high!r}] for exactly those two values."
            raise SweepError(msg)
        return RangeControl(name, low, high, step[0] if step else None)
    if isinstance(spec, Mapping):
        return ChoiceControl(name, list(spec.values()), labels=[str(k) for k in spec])
    if isinstance(spec, (set, frozenset)):
        msg = f"Axis {name!r} is a {type(spec).__name__}, whose order changes between Python processes; pass sorted(...) or a list."
        raise SweepError(msg)
    if isinstance(spec, Iterable) and not isinstance(spec, bytes):
        return ChoiceControl(name, list(spec))
    msg = f"SweepPanel can't make a control for axis {name!r} from {type(spec).__name__} {_LABEL.repr(spec)}. Give a range (min, max[, step]), a log range (min, max, 'log'), a list of values, a bool or a str."
    raise TypeError(msg)


def _log_spec(name: str, spec: tuple) -> AxisControl:
    if len(spec) == 3:
        return LogRangeControl(name, spec[0], spec[1])
    if len(spec) == 4:
        return LogRangeControl(name, spec[0], spec[1], spec[2])
    msg = f"Axis {name!r}: a log range is (min, max, 'log') or (min, max, step_in_decades, 'log'), got {spec!r}."
    raise SweepError(msg)


def controls_from_signature(target: Any) -> dict[str, AxisControl]:
    """Controls for the parameters of ``target``, read from their defaults.

    Raises:
        TypeError: the target has no readable signature (an action or a graph).
        SweepError: a parameter has no default, so the panel can't guess its values.
    """
    name = getattr(target, "__name__", None) or getattr(target, "name", None) or type(target).__name__
    if isinstance(target, (Action, RunnableGraph)):
        # Their parameters live in state, which a signature does not show.
        msg = f"SweepPanel can't read the parameters of the action or graph {name!r} from a signature; pass the axes yourself, e.g. SweepPanel({name}, lr=(1e-4, 1e-1, 'log'))."
        raise TypeError(msg)
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        msg = f"SweepPanel can't read the parameters of {name}; pass the axes yourself, e.g. SweepPanel({name}, lr=(1e-4, 1e-1, 'log'))."
        raise TypeError(msg) from None
    controls: dict[str, AxisControl] = {}
    for param in params.values():
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            continue
        if param.default is param.empty:
            msg = f"SweepPanel can't guess the values of {name}()'s parameter {param.name!r}: it has no default. Give it a default, or pass the axes yourself, e.g. SweepPanel({name}, {param.name}=[...])."
            raise SweepError(msg)
        default = param.default
        if isinstance(default, (bool, str, list, tuple)) or _is_number(default):
            controls[param.name] = control_for(param.name, default)
        # Any other default (None, an object) gets no control: the target keeps using it.
    if not controls:
        msg = f"SweepPanel found no parameter of {name}() to make a control for; pass the axes yourself, e.g. SweepPanel({name}, x=[1, 2, 3])."
        raise SweepError(msg)
    return controls
