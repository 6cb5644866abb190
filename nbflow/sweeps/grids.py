"""`Grid`: the parameter points a sweep runs, built from axes and composed with ``*`` and ``+``.

``grid`` takes every combination of its axes, ``zipped`` pairs them up position
by position, and ``sample`` (in `nbflow.sweeps.distributions`) draws random
points. Grids compose freely: ``g1 * g2`` is their product and ``g1 + g2`` runs
the points of one after the other.

A grid never lists its points up front. Each node knows its length and how to
build point ``i`` from its parts, so ``len(g)`` and ``g[i]`` cost O(axes) even
for a product of a trillion points, and a worker process can rebuild the one
point it runs from the grid and an index. Internally a point is a tuple in axis
order; it becomes a fresh ``dict`` only on the way out.
"""

from __future__ import annotations

import bisect
import html
import itertools
import math
import operator
import reprlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from nbflow.errors import SweepError

__all__ = ["Grid", "grid", "zipped", "axis_key"]

_HTML_ROWS = 10
_TIMES = " \N{MULTIPLICATION SIGN} "

_REPR = reprlib.Repr()
_REPR.maxstring = 40
_REPR.maxother = 40
_REPR.maxlist = _REPR.maxtuple = 6


def _short(value: Any) -> str:
    return _REPR.repr(value)


def axis_key(value: Any) -> Any:
    """An axis value as something to group and count by: itself when hashable, else its repr (a list)."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _freeze(obj: Grid, **fields: Any) -> None:
    for name, value in fields.items():
        object.__setattr__(obj, name, value)


class Grid(Sequence):
    """An immutable, re-iterable sequence of parameter points, each a fresh ``dict``.

    Build one with `grid`, `zipped` or `sample`. ``a * b`` is the product (a's
    axes first, b's points varying fastest) and ``a + b`` the points of ``a``
    then those of ``b``, which must have the same axes. Both give a Grid again,
    so they nest: ``(grid(a=[1, 2]) + grid(a=[9])) * zipped(b=[1, 2], c=[3, 4])``.

    Example:
        >>> g = grid(lr=[0.1, 0.01], seed=[0, 1, 2])
        >>> len(g), g.axes
        (6, ['lr', 'seed'])
        >>> g[0], g[-1]
        ({'lr': 0.1, 'seed': 0}, {'lr': 0.01, 'seed': 2})
        >>> g * zipped(depth=[1, 2], width=[8, 16])
        Grid(lr: 2 values × seed: 3 values × zip(depth, width): 2 values = 12 points)
    """  # the repr writes a product with the multiplication sign

    __slots__ = ("_axes", "_len")
    _axes: tuple[str, ...]
    _len: int

    def __init__(self) -> None:
        msg = "Grid is not built directly: use grid(...), zipped(...) or sample(...), and combine them with * and +."
        raise TypeError(msg)

    # What each kind of node provides: one row, all rows in order, and its part of the repr.
    def _row(self, i: int) -> tuple:
        raise NotImplementedError

    def _rows(self) -> Iterator[tuple]:
        raise NotImplementedError

    def _structure(self) -> str:
        raise NotImplementedError

    @property
    def axes(self) -> list[str]:
        """The parameter names, in the order every point lists them."""
        return list(self._axes)

    def points(self) -> list[dict[str, Any]]:
        """Every point, as a list of fresh dicts."""
        return list(self)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[dict[str, Any]]:
        axes = self._axes
        for row in self._rows():
            yield dict(zip(axes, row, strict=True))

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [dict(zip(self._axes, self._row(i), strict=True)) for i in range(self._len)[index]]
        try:
            i = operator.index(index)
        except TypeError:
            msg = f"Grid indices must be integers or slices, not {type(index).__name__}."
            raise TypeError(msg) from None
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            msg = f"Grid index {index} is out of range for a grid of {_count(self._len, 'point')}."
            raise IndexError(msg)
        return dict(zip(self._axes, self._row(i), strict=True))

    def __mul__(self, other: object) -> Grid:
        if not isinstance(other, Grid):
            return NotImplemented
        shared = [a for a in self._axes if a in other._axes]
        if shared:
            msg = f"Can't multiply grids that share the axes {shared}: the left has {list(self._axes)}, the right {list(other._axes)}. Each axis appears once in a product; rename one of them, or use + to run grids with the same axes one after the other."
            raise SweepError(msg)
        return _product((*_factors(self), *_factors(other)))

    def __add__(self, other: object) -> Grid:
        if not isinstance(other, Grid):
            return NotImplemented
        if set(self._axes) != set(other._axes):
            only_left = [a for a in self._axes if a not in other._axes]
            only_right = [a for a in other._axes if a not in self._axes]
            example = (only_left or only_right)[0]
            msg = f"Can't concatenate grids with different axes: {list(self._axes)} + {list(other._axes)} (only on the left: {only_left}; only on the right: {only_right}). Give both the same axes, e.g. multiply the grid that lacks '{example}' by grid({example}=[value])."
            raise SweepError(msg)
        return _Concat((*_terms(self), *_terms(other)))

    def __setattr__(self, name: str, value: Any) -> None:
        msg = f"Grid is immutable: can't set {name!r}. Build a new grid with grid(), zipped(), sample(), * or +."
        raise AttributeError(msg)

    def __delattr__(self, name: str) -> None:
        msg = f"Grid is immutable: can't delete {name!r}."
        raise AttributeError(msg)

    def __repr__(self) -> str:
        return f"Grid({self._structure()} = {_count(self._len, 'point')})"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(a)}</th>" for a in self._axes)
        rows = "".join(
            f"<tr><th>{i}</th>"
            + "".join(f"<td><code>{html.escape(_short(v))}</code></td>" for v in row)
            + "</tr>"
            for i, row in enumerate(itertools.islice(self._rows(), _HTML_ROWS))
        )
        hidden = self._len - _HTML_ROWS
        more = (
            f"<tr><td colspan={len(self._axes) + 1}>… {_count(hidden, 'more point')}</td></tr>"
            if hidden > 0
            else ""
        )
        return (
            f"<table><caption>{html.escape(repr(self))}</caption>"
            f"<thead><tr><th></th>{head}</tr></thead><tbody>{rows}{more}</tbody></table>"
        )


class _Zip(Grid):
    """Columns of equal length read side by side; a single column is a plain axis."""

    __slots__ = ("_columns",)

    def __init__(self, axes: tuple[str, ...], columns: tuple[Sequence, ...]) -> None:
        _freeze(self, _axes=axes, _len=len(columns[0]), _columns=columns)

    def __reduce__(self) -> tuple:
        return (type(self), (self._axes, self._columns))

    def _row(self, i: int) -> tuple:
        return tuple(column[i] for column in self._columns)

    def _rows(self) -> Iterator[tuple]:
        return zip(*self._columns, strict=True)

    def _label(self) -> str:
        return self._axes[0] if len(self._axes) == 1 else f"zip({', '.join(self._axes)})"

    def _structure(self) -> str:
        return f"{self._label()}: {_count(self._len, 'value')}"


class _Sample(_Zip):
    """Drawn columns, remembering the distributions and the seed for the repr."""

    __slots__ = ("_seed", "_specs")

    def __init__(
        self, axes: tuple[str, ...], columns: tuple[Sequence, ...], specs: tuple, seed: int | str
    ) -> None:
        super().__init__(axes, columns)
        _freeze(self, _specs=specs, _seed=seed)

    def __reduce__(self) -> tuple:
        return (type(self), (self._axes, self._columns, self._specs, self._seed))

    def _label(self) -> str:
        drawn = ", ".join(f"{a} ~ {s!r}" for a, s in zip(self._axes, self._specs, strict=True))
        return f"sample({drawn}, seed={self._seed!r})"


class _Product(Grid):
    """Every combination of its parts' points, the last part varying fastest."""

    __slots__ = ("_parts",)

    def __init__(self, parts: tuple[Grid, ...]) -> None:
        axes = tuple(a for part in parts for a in part._axes)
        _freeze(self, _axes=axes, _len=math.prod(len(p) for p in parts), _parts=parts)

    def __reduce__(self) -> tuple:
        return (type(self), (self._parts,))

    def _row(self, i: int) -> tuple:
        # Mixed-radix digits of i, least significant (last part) first.
        pieces = []
        for part in reversed(self._parts):
            i, digit = divmod(i, part._len)
            pieces.append(part._row(digit))
        return tuple(itertools.chain.from_iterable(reversed(pieces)))

    def _rows(self) -> Iterator[tuple]:
        for combo in itertools.product(*(part._rows() for part in self._parts)):
            yield tuple(itertools.chain.from_iterable(combo))

    def _structure(self) -> str:
        if not self._parts:
            return "no axes"
        # + binds looser than the product sign, so a concatenation inside a product needs brackets.
        return _TIMES.join(
            f"({p._structure()})" if isinstance(p, _Concat) else p._structure() for p in self._parts
        )


class _Concat(Grid):
    """The points of each part in turn, reordered into the first part's axis order."""

    __slots__ = ("_ends", "_orders", "_parts")

    def __init__(self, parts: tuple[Grid, ...]) -> None:
        axes = parts[0]._axes
        orders = tuple(None if p._axes == axes else tuple(p._axes.index(a) for a in axes) for p in parts)
        ends = tuple(itertools.accumulate(len(p) for p in parts))
        _freeze(self, _axes=axes, _len=ends[-1], _parts=parts, _orders=orders, _ends=ends)

    def __reduce__(self) -> tuple:
        return (type(self), (self._parts,))

    def _row(self, i: int) -> tuple:
        k = bisect.bisect_right(self._ends, i)
        row = self._parts[k]._row(i - (self._ends[k - 1] if k else 0))
        order = self._orders[k]
        return row if order is None else tuple(row[j] for j in order)

    def _rows(self) -> Iterator[tuple]:
        for part, order in zip(self._parts, self._orders, strict=True):
            if order is None:
                yield from part._rows()
            else:
                for row in part._rows():
                    yield tuple(row[j] for j in order)

    def _structure(self) -> str:
        return " + ".join(p._structure() for p in self._parts)


def _factors(g: Grid) -> tuple[Grid, ...]:
    return g._parts if isinstance(g, _Product) else (g,)


def _terms(g: Grid) -> tuple[Grid, ...]:
    return g._parts if isinstance(g, _Concat) else (g,)


def _product(parts: tuple[Grid, ...]) -> Grid:
    return parts[0] if len(parts) == 1 else _Product(parts)


def _axis_values(func: str, label: str, wrap: Callable[[str], str], values: Any) -> Sequence:
    """The values of an axis (or the options of a choice) as an immutable sequence; a range stays a range.

    ``label`` names the culprit in messages ("axis 'lr'") and ``wrap`` spells the
    fix as the caller would type it (``lr=[...]`` or ``choice([...])``).
    """
    kind = type(values).__name__
    if isinstance(values, (str, bytes, bytearray)):
        msg = f"{func}: {label} is a {kind} ({_short(values)}), which would use each character as a value. For a single value use {wrap(f'[{_short(values)}]')}."
        raise SweepError(msg)
    if isinstance(values, Mapping):
        msg = f"{func}: {label} is a {kind}; say which part to use: {wrap('list(d)')} for its keys, or {wrap('list(d.values())')} for its values."
        raise SweepError(msg)
    if isinstance(values, (set, frozenset)):
        # Set order follows string hashes, which change per process: point i would differ in a worker.
        msg = f"{func}: {label} is a {kind}, whose order can change from one Python process to the next, so a point's index would not be stable. Pass {wrap('sorted(...)')} or a list."
        raise SweepError(msg)
    if isinstance(values, range):
        return values
    try:
        iterator = iter(values)
    except TypeError:
        msg = f"{func}: {label} must be an iterable of values, got {kind} {_short(values)}. For a single value use {wrap(f'[{_short(values)}]')}."
        raise SweepError(msg) from None
    return tuple(iterator)


def _keyword(name: str) -> Callable[[str], str]:
    return lambda expr: f"{name}={expr}"


def grid(**axes: Any) -> Grid:
    """Every combination of the axes' values, the last axis varying fastest (like ``itertools.product``).

    Args:
        **axes: each axis name with its values: a list, tuple, range, numpy
            array, pandas Series or Index, or a generator (read once). Values
            are kept as given. An empty axis makes an empty grid. With no axes
            at all, the grid has one point with no parameters (the identity of ``*``).

    Returns:
        A `Grid` of ``len(values1) * len(values2) * ...`` points.

    Raises:
        SweepError: an axis is a string, bytes, a mapping, a set or not iterable.

    Example:
        >>> g = grid(lr=[0.1, 0.01], seed=range(2))
        >>> g
        Grid(lr: 2 values × seed: 2 values = 4 points)
        >>> g.points()
        [{'lr': 0.1, 'seed': 0}, {'lr': 0.1, 'seed': 1}, {'lr': 0.01, 'seed': 0}, {'lr': 0.01, 'seed': 1}]
    """  # the repr writes a product with the multiplication sign
    return _product(
        tuple(
            _Zip((name,), (_axis_values("grid()", f"axis '{name}'", _keyword(name), values),))
            for name, values in axes.items()
        )
    )


def zipped(**axes: Any) -> Grid:
    """The axes paired up position by position: point ``i`` takes the ``i``-th value of each.

    Args:
        **axes: each axis name with its values (as for `grid`); all of the same length.

    Returns:
        A `Grid` with one point per position.

    Raises:
        SweepError: no axes, axes of different lengths, or an axis `grid` would refuse.

    Example:
        >>> zipped(lr=[0.1, 0.01], batch=[32, 64]).points()
        [{'lr': 0.1, 'batch': 32}, {'lr': 0.01, 'batch': 64}]
    """
    if not axes:
        msg = "zipped() needs at least one axis, e.g. zipped(lr=[0.1, 0.01], batch=[32, 64])."
        raise SweepError(msg)
    columns = {
        name: _axis_values("zipped()", f"axis '{name}'", _keyword(name), values)
        for name, values in axes.items()
    }
    if len({len(c) for c in columns.values()}) > 1:
        lengths = ", ".join(f"'{name}' has {len(c)}" for name, c in columns.items())
        msg = f"zipped() needs axes of equal length, but {lengths}. Make them the same length, or use grid(...) for every combination."
        raise SweepError(msg)
    return _Zip(tuple(columns), tuple(columns.values()))
