"""Distributions and `sample`: random parameter points, drawn reproducibly from a seed.

`uniform`, `loguniform`, `randint` and `choice` say what to draw an axis from;
`sample` draws ``n`` points into a `Grid`. Kept apart from `nbflow.sweeps.grids`,
which holds the grid algebra (``*``, ``+``, indexing) that these points then join;
this module builds on it, never the reverse.
"""

from __future__ import annotations

import math
import numbers
import operator
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbflow.errors import SweepError
from nbflow.sweeps.grids import Grid, _axis_values, _keyword, _Sample, _short

__all__ = ["sample", "Distribution", "uniform", "loguniform", "randint", "choice"]


class Distribution:
    """What `sample` draws one parameter from: made by `uniform`, `loguniform`, `randint` or `choice`."""

    __slots__ = ()

    def draw(self, rng: random.Random) -> Any:
        """One value, drawn with ``rng``."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, repr=False)
class _Uniform(Distribution):
    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    def __repr__(self) -> str:
        return f"uniform({self.low!r}, {self.high!r})"


@dataclass(frozen=True, slots=True, repr=False)
class _LogUniform(Distribution):
    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        # exp(log(x)) can round a hair past either end.
        return min(max(value, self.low), self.high)

    def __repr__(self) -> str:
        return f"loguniform({self.low!r}, {self.high!r})"


@dataclass(frozen=True, slots=True, repr=False)
class _RandInt(Distribution):
    low: int
    high: int

    def draw(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)

    def __repr__(self) -> str:
        return f"randint({self.low!r}, {self.high!r})"


@dataclass(frozen=True, slots=True, repr=False)
class _Choice(Distribution):
    options: tuple

    def draw(self, rng: random.Random) -> Any:
        return rng.choice(self.options)

    def __repr__(self) -> str:
        return f"choice({_short(list(self.options))})"


def _real(func: str, param: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        msg = f"{func}() needs a finite number for {param}, got {type(value).__name__} {_short(value)}."
        raise SweepError(msg)
    return float(value)


def _ordered(func: str, low: Any, high: Any) -> None:
    if high < low:
        msg = f"{func}() needs low <= high, got low={low!r} and high={high!r}. Swap them: {func}({high!r}, {low!r})."
        raise SweepError(msg)


def uniform(low: float, high: float) -> Distribution:
    """Floats spread evenly between ``low`` and ``high``.

    Raises:
        SweepError: a bound is not a finite number, or ``high < low``.

    Example:
        >>> sample(2, seed=0, dropout=uniform(0.0, 0.5)).axes
        ['dropout']
    """
    bounds = _real("uniform", "low", low), _real("uniform", "high", high)
    _ordered("uniform", low, high)
    return _Uniform(*bounds)


def loguniform(low: float, high: float) -> Distribution:
    """Positive floats spread evenly in log space: as many between 1e-4 and 1e-3 as between 1e-3 and 1e-2.

    Raises:
        SweepError: a bound is not a finite number, ``low <= 0``, or ``high < low``.

    Example:
        >>> all(1e-4 <= p["lr"] <= 1e-1 for p in sample(5, seed=0, lr=loguniform(1e-4, 1e-1)))
        True
    """
    bounds = _real("loguniform", "low", low), _real("loguniform", "high", high)
    if bounds[0] <= 0:
        msg = f"loguniform() needs low > 0 (its values are spread evenly over log(low)..log(high)), got low={low!r}. Use a small positive low such as 1e-8, or uniform({low!r}, {high!r}) to include {low!r}."
        raise SweepError(msg)
    _ordered("loguniform", low, high)
    return _LogUniform(*bounds)


def randint(low: int, high: int) -> Distribution:
    """Integers from ``low`` to ``high``, both included.

    Raises:
        SweepError: a bound is not an integer, or ``high < low``.

    Example:
        >>> sorted({p["depth"] for p in sample(50, seed=0, depth=randint(1, 3))})
        [1, 2, 3]
    """
    bounds = {}
    for param, value in (("low", low), ("high", high)):
        try:
            bounds[param] = operator.index(value)
        except TypeError:
            msg = (
                f"randint() needs integers, got {param}={value!r}. For floats use uniform({low!r}, {high!r})."
            )
            raise SweepError(msg) from None
    _ordered("randint", bounds["low"], bounds["high"])
    return _RandInt(bounds["low"], bounds["high"])


def choice(options: Any) -> Distribution:
    """One of ``options``, each equally likely. A plain list or tuple given to `sample` means the same.

    Raises:
        SweepError: ``options`` is empty, a string, a set or not iterable.

    Example:
        >>> sample(3, seed=0, opt=choice(["adam", "sgd"])).axes
        ['opt']
    """
    return _choice("choice()", "options", lambda expr: f"choice({expr})", options)


def _choice(func: str, label: str, wrap: Callable[[str], str], options: Any) -> _Choice:
    values = tuple(_axis_values(func, label, wrap, options))
    if not values:
        msg = (
            f"{func}: {label} is an empty {type(options).__name__}; give at least one option to choose from."
        )
        raise SweepError(msg)
    return _Choice(values)


def _as_distribution(name: str, spec: Any) -> Distribution:
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, (list, tuple)):
        return _choice("sample()", f"'{name}'", _keyword(name), spec)
    scalar = isinstance(spec, (str, bytes)) or not hasattr(spec, "__iter__")
    fixed = f"; for a fixed value use {name}=[{_short(spec)}]" if scalar else ""
    msg = f"sample() can't draw '{name}' from {type(spec).__name__} {_short(spec)}. Give uniform(low, high), loguniform(low, high), randint(low, high), choice(options) or a list of options{fixed}."
    raise SweepError(msg)


def _as_seed(seed: Any) -> int | str:
    if seed is None:
        # A fresh Random() seeds itself from the OS, independent of the global random.seed().
        return random.Random().getrandbits(64)
    if isinstance(seed, str):
        return seed
    try:
        return operator.index(seed)
    except TypeError:
        msg = f"sample() needs an int or a str for seed, got {type(seed).__name__} {_short(seed)}."
        raise SweepError(msg) from None


def sample(n: int, *, seed: int | str | None = None, **distributions: Any) -> Grid:
    """``n`` random points, the same ones every time for a given ``seed``.

    Each axis draws from its own ``random.Random`` seeded from ``seed`` and the
    axis name, so the draws are stable across platforms and need no numpy,
    adding or reordering axes leaves the other axes' values alone, and a
    larger ``n`` extends the points of a smaller one.

    Args:
        n: how many points, at least 1.
        seed: an int or a str for reproducible points; None draws a fresh seed,
            which the repr shows so the points can be drawn again.
        **distributions: each axis name with a `uniform`, `loguniform`,
            `randint` or `choice`, or a list or tuple of options (``choice``).

    Returns:
        A `Grid` of ``n`` points.

    Raises:
        SweepError: ``n`` is not a positive integer, there are no
            distributions, or one is not a distribution.

    Example:
        >>> g = sample(3, seed=0, lr=loguniform(1e-4, 1e-1), opt=["adam", "sgd"])
        >>> len(g), g.axes
        (3, ['lr', 'opt'])
        >>> g.points() == sample(3, seed=0, lr=loguniform(1e-4, 1e-1), opt=["adam", "sgd"]).points()
        True
    """
    try:
        count = operator.index(n)
    except TypeError:
        msg = f"sample() needs an integer n (how many points), got {type(n).__name__} {_short(n)}."
        raise SweepError(msg) from None
    if count < 1:
        msg = f"sample() needs n >= 1 points, got n={count}."
        raise SweepError(msg)
    if not distributions:
        msg = "sample() needs at least one axis to draw, e.g. sample(20, seed=0, lr=loguniform(1e-4, 1e-1))."
        raise SweepError(msg)
    specs = {name: _as_distribution(name, spec) for name, spec in distributions.items()}
    used = _as_seed(seed)
    columns = []
    for name, spec in specs.items():
        # str seeds are hashed with SHA-512 by random.Random: stable across processes and platforms.
        rng = random.Random(f"nbflow.sample:{used!r}:{name}")
        columns.append(tuple(spec.draw(rng) for _ in range(count)))
    return _Sample(tuple(specs), tuple(columns), tuple(specs.values()), used)
