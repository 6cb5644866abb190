"""One recognizer per type family, shared by fingerprints and the serde, so the two never disagree."""

import dataclasses
import enum
import typing

import numpy as np
import pandas as pd
import pytest

from nbflow.fingerprint import family, value_fingerprint
from nbflow.persistence.serde import dumps, loads


class Level(enum.IntEnum):
    LOW = 1


@dataclasses.dataclass
class Point:
    x: int


class Pair(typing.NamedTuple):
    a: int
    b: int


class Frame(pd.DataFrame):
    """A DataFrame subclass (as geopandas makes): more than its columns, so in no family."""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Level.LOW, "enum"),
        (Point(1), "dataclass"),
        (Pair(1, 2), "namedtuple"),
        (np.arange(3), "ndarray"),
        (np.float32(1.5), "numpy_scalar"),
        (pd.DataFrame({"a": [1]}), "dataframe"),
        (pd.Series([1]), "series"),
        (pd.RangeIndex(2), "index"),
        (pd.Timestamp("2026-01-01"), "pandas_scalar"),
        (Frame({"a": [1]}), None),
        (1, None),
    ],
)
def test_family_of_each_kind_of_value(value, expected):
    """Each value's type lands in its family; subclasses that change what the data means land in none."""
    assert family(type(value)) == expected


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (Level.LOW, 1),
        (Point(1), (1,)),
        (Pair(1, 2), (1, 2)),
        (np.arange(3), [0, 1, 2]),
        (pd.Series([1.5]), [1.5]),
    ],
)
def test_family_members_round_trip_through_serde_and_fingerprint_apart_from_their_plain_data(value, plain):
    """What serde stores by family comes back the same type; its fingerprint differs from the plain data inside."""
    back = loads(dumps(value))
    assert type(back) is type(value)
    assert value_fingerprint(back) == value_fingerprint(value)
    assert value_fingerprint(value) != value_fingerprint(plain)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_matrix_is_neither_stored_nor_fingerprinted_as_a_plain_array():
    """np.matrix multiplies differently: serde refuses to store it as an ndarray, and it fingerprints apart."""
    from nbflow import SerializationError

    with pytest.raises(SerializationError, match=r"numpy\.matrix is not a type nbflow can store"):
        dumps(np.matrix([[1, 2]]))
    assert value_fingerprint(np.matrix([[1, 2]])) != value_fingerprint(np.array([[1, 2]]))
