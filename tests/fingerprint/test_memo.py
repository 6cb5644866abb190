"""What a task starts from is digested so that two points share a digest only when they are the same point.

The digest keys the cache and a persisted task's id, so a collision files one point's result
under another's parameters. Plain scalars go into the digest directly (the hot path); other values
by their own fingerprint. Neither route may make unequal points equal.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest

from nbflow.fingerprint import DigestMemo
from nbflow.fingerprint.code import value_fingerprint

# Values that Python calls equal (or that print alike) but that are different parameters.
_LOOKALIKES = [
    1,
    1.0,
    True,
    0,
    0.0,
    -0.0,
    False,
    None,
    "1",
    "",
    "None",
    b"1",
    math.nan,
    math.inf,
    2**70,
    (1,),
    [1],
    {"a": 1},
    np.int64(1),
    np.float64(1.0),
    np.array([1]),
    value_fingerprint(1),  # a string equal to another value's digest
    value_fingerprint([1]),
]


def _start(point: dict, inputs: dict | None = None) -> str:
    return DigestMemo().task(list(point), inputs or {}, point)


def test_task_digest_tells_apart_values_python_calls_equal():
    """1, 1.0 and True; 0.0 and -0.0; a string and the digest it might be mistaken for: all differ."""
    digests = [_start({"x": value}) for value in _LOOKALIKES]
    clashes = [
        (a, b)
        for (a, da), (b, db) in itertools.combinations(zip(_LOOKALIKES, digests, strict=True), 2)
        if da == db
    ]
    assert clashes == []


def test_task_digest_depends_on_which_parameter_holds_which_value():
    """x=1, y=2 is not x=2, y=1, and a read key is not an input of the same name."""
    assert _start({"x": 1, "y": 2}) != _start({"x": 2, "y": 1})
    assert DigestMemo().task(["x"], {}, {"x": 1}) != DigestMemo().task([], {"x": 1}, {})
    assert _start({"x": 1}) != _start({"x": 1, "y": None})


def test_task_digest_is_the_same_for_equal_points_whatever_the_key_order_or_memo():
    """The order of the keys does not matter, and a memo remembers nothing that changes a digest."""
    memo = DigestMemo()
    shared = [1, 2, 3]
    first = memo.task(["a", "b"], {}, {"a": shared, "b": 0.5})
    assert memo.task(["b", "a"], {}, {"b": 0.5, "a": shared}) == first
    assert DigestMemo().task(["a", "b"], {}, {"a": [1, 2, 3], "b": 0.5}) == first


def test_task_digest_ignores_state_keys_the_task_does_not_read():
    assert DigestMemo().task(["x"], {}, {"x": 1, "other": 2}) == _start({"x": 1})


def test_task_digest_is_stable_across_processes():
    """A cache survives a kernel restart only if the digest of a point is the same in a new process."""
    code = "from nbflow.fingerprint import DigestMemo; print(DigestMemo().task(['x', 's'], {'k': 2.5}, {'x': 3, 's': 'a', 'z': [1]}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == DigestMemo().task(["x", "s"], {"k": 2.5}, {"x": 3, "s": "a", "z": [1]})


def test_task_digest_of_a_value_it_cannot_digest_is_an_error_or_never_repeats():
    """strict: a TypeError; otherwise a digest of its own each time, so nothing is taken for it."""
    lock = __import__("threading").Lock()
    with pytest.raises(TypeError):
        DigestMemo().task(["x"], {}, {"x": lock})
    assert DigestMemo().task(["x"], {}, {"x": lock}, strict=False) != DigestMemo().task(
        ["x"], {}, {"x": lock}, strict=False
    )
