"""Type families: the kinds of value that fingerprints and the JSON serde both treat by their structure.

A fingerprint hashes a dataclass by its fields and a serde file stores it by its
fields, so both must agree on what a dataclass is; likewise enums, named tuples,
pydantic models, numpy arrays and scalars, and pandas frames, series and indexes.
`family` is the one place that decides. numpy, pandas and pydantic are never
imported here: a value of theirs can only exist once its library is loaded, so
``sys.modules`` is asked instead.

Recognition is exact where a subclass could change what the data means: an
``np.matrix`` multiplies differently from the ``ndarray`` it holds, and a
``GeoDataFrame`` is more than its columns, so neither belongs to a family.

Example:
    >>> import enum
    >>> class Colour(enum.Enum):
    ...     RED = 1
    >>> family(Colour), family(int)
    ('enum', None)
"""

from __future__ import annotations

import dataclasses
import enum
import sys

__all__ = ["family", "FAMILIES"]

#: Every family `family` can return.
FAMILIES = (
    "enum", "dataclass", "namedtuple", "pydantic",
    "ndarray", "numpy_scalar",
    "dataframe", "series", "index", "pandas_scalar",
)  # fmt: skip


def family(cls: type) -> str | None:
    """The family of ``cls`` (one of `FAMILIES`), or None when it belongs to none."""
    if issubclass(cls, enum.Enum):
        return "enum"
    if dataclasses.is_dataclass(cls):
        return "dataclass"
    if issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple):
        return "namedtuple"
    top = (cls.__module__ or "").partition(".")[0]
    if top == "numpy" and "numpy" in sys.modules:
        return _numpy_family(cls)
    if top == "pandas" and "pandas" in sys.modules:
        return _pandas_family(cls)
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        return "pydantic"
    return None


def _numpy_family(cls: type) -> str | None:
    np = sys.modules["numpy"]
    if cls is np.ndarray:
        return "ndarray"
    if issubclass(cls, np.generic):
        return "numpy_scalar"
    return None


def _pandas_family(cls: type) -> str | None:
    pd = sys.modules["pandas"]
    if cls is pd.DataFrame:
        return "dataframe"
    if cls is pd.Series:
        return "series"
    if issubclass(cls, pd.Index):
        return "index"  # RangeIndex, MultiIndex, DatetimeIndex...: pandas' own, all stored as Indexes
    if cls in (pd.Timestamp, pd.Timedelta, pd.Period, pd.Interval, type(pd.NaT), type(pd.NA)):
        return "pandas_scalar"
    return None
