"""Columns whose dtype depends on their values alone, however the rows arrived.

A sweep's rows arrive in completion order and are turned into columns a chunk at a time,
while a live table may read the frame mid-run. If each chunk let pandas infer its own dtype,
the final dtype would depend on where the chunk boundaries fell: a first chunk of failed
points (all None) would make a float metric ``object``. So each chunk is summarized by the
*kinds* of value it holds, kept compactly, and the final dtype is decided from the union of
the kinds of the whole column:

- only whole numbers: ``int64``, or nullable ``Int64`` when some row has no value;
- numbers with a float among them: ``float64`` (a missing value is NaN);
- only booleans: ``bool``, or nullable ``boolean`` with gaps;
- anything else (text, lists, mixed kinds, objects): what ``pd.Series`` makes of the
  original values, or ``object`` if pandas cannot build it.

None is the missing value. numpy scalars count as the Python kind they stand for.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

__all__ = ["Piece", "piece", "join"]

_NONE = type(None)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@functools.lru_cache(maxsize=512)
def _kind_of_type(t: type) -> str:
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "float"
    module = getattr(t, "__module__", "")
    if module == "numpy":
        import numpy as np

        if issubclass(t, (np.timedelta64, np.datetime64)):
            return "other"  # timedelta64 is an integer subclass to numpy, not a number to a user
        if issubclass(t, np.bool_):
            return "bool"
        if issubclass(t, np.integer):
            return "int"
        if issubclass(t, np.floating):
            return "float"
    return "other"


class Piece:
    """One chunk of a column: its values held compactly, the kinds they are, and where None was.

    Plain Python numbers are held as one numpy array (NaN/0 where None was, with a mask);
    anything else (numpy scalars, text, objects) as the original objects, so that an
    ``object`` column gives back exactly what the target returned.
    """

    __slots__ = ("kinds", "missing", "numbers", "objects")

    def __init__(self, kinds: frozenset[str], missing: Any, numbers: Any = None, objects: Any = None):
        self.kinds = kinds
        self.missing = missing  # a numpy bool mask, or None when nothing is missing
        self.numbers = numbers
        self.objects = objects

    def __len__(self) -> int:
        return len(self.numbers if self.numbers is not None else self.objects)

    def as_objects(self) -> Any:
        """The values as an object array, None where they were None."""

        if self.objects is not None:
            return self.objects
        values = self.numbers.astype(object)
        if self.missing is not None:
            values[self.missing] = None
        return values

    def as_numbers(self, dtype: str) -> Any:
        """The values as a numpy array of ``dtype`` (int64, float64 or bool); missing slots hold 0/NaN/False."""
        import numpy as np

        if self.numbers is not None and self.numbers.dtype == dtype:
            return self.numbers
        if self.numbers is not None:
            out = self.numbers.astype(dtype)
        else:
            fill = float("nan") if dtype == "float64" else 0
            out = np.array([fill if v is None else v for v in self.objects], dtype=dtype)
        if dtype == "float64" and self.missing is not None:
            out[self.missing] = np.nan
        return out

    def missing_mask(self) -> Any:
        import numpy as np

        return self.missing if self.missing is not None else np.zeros(len(self), dtype=bool)


def piece(values: list) -> Piece:
    """A chunk of a column from its values, in row order."""
    import numpy as np

    types = set(map(type, values))
    missing = None
    if _NONE in types:
        types.discard(_NONE)
        missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    kinds = frozenset(_kind_of_type(t) for t in types)
    # One plain type only: a chunk mixing ints and floats keeps its objects, so that a column
    # that turns out to be `object` gives back the ints as ints.
    if len(types) == 1 and types <= {int, float, bool}:
        dtype = {bool: "bool", int: "int64", float: "float64"}[next(iter(types))]
        fill = False if dtype == "bool" else float("nan") if dtype == "float64" else 0
        filled = values if missing is None else [fill if v is None else v for v in values]
        try:
            numbers = np.array(filled, dtype=dtype)
        except OverflowError:  # an int past int64's range: the column is kept as objects
            kinds = frozenset({"other"})
        else:
            return Piece(kinds, missing, numbers=numbers)
    # fromiter, not an assignment: numpy would read equal-length lists as a second dimension.
    objects = np.fromiter(values, dtype=object, count=len(values))
    if "int" in kinds and any(
        _kind_of_type(type(v)) == "int" and not _INT64_MIN <= int(v) <= _INT64_MAX for v in values
    ):
        kinds = kinds | {"other"}  # an int past int64's range (a big int, a large uint64): kept as objects
    return Piece(kinds, missing, objects=objects)


def join(pieces: Iterable[Piece]) -> Any:
    """The whole column as a pandas Series, its dtype decided by the kinds of every piece."""
    import pandas as pd

    pieces = list(pieces)
    kinds = frozenset().union(*(p.kinds for p in pieces))
    if kinds == {"int"}:
        dtype = "int64"
    elif kinds in ({"float"}, {"int", "float"}):
        dtype = "float64"
    elif kinds == {"bool"}:
        dtype = "bool"
    else:
        return _objects(pieces)
    values = _concat([p.as_numbers(dtype) for p in pieces], dtype)
    if dtype == "float64" or all(p.missing is None for p in pieces):
        return pd.Series(values, copy=False)
    mask = _concat([p.missing_mask() for p in pieces], "bool")
    array = pd.arrays.IntegerArray(values, mask) if dtype == "int64" else pd.arrays.BooleanArray(values, mask)
    return pd.Series(array, copy=False)


def _concat(arrays: list, dtype: str) -> Any:
    import numpy as np

    if not arrays:
        return np.empty(0, dtype=dtype)
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _objects(pieces: list[Piece]) -> Any:
    import numpy as np
    import pandas as pd

    values = _concat([p.as_objects() for p in pieces], "object") if pieces else np.empty(0, dtype=object)
    if not len(values):
        return pd.Series([], dtype=object)
    try:
        return pd.Series(values.tolist())
    except Exception:
        # pandas could not make a column of them (ragged arrays, objects that break its inference).
        return pd.Series(values, dtype=object, copy=False)
