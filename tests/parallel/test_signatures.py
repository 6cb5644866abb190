"""call_declared: hooks get only the parameters they declare, by name or by position."""

import pytest

from nbflow.parallel.signatures import call_declared

ORDERS = {1: ("states",), 2: ("state", "states")}


class Hooks:
    def short(self, states):
        return ("short", states)

    def long(self, state, states):
        return ("long", state, states)

    def renamed(self, s, results):
        return ("renamed", s, results)

    def anything(self, **kwargs):
        return ("anything", sorted(kwargs))

    def too_many(self, a, b, c):
        return None


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("short", ("short", "S")),
        ("long", ("long", "st", "S")),
        ("renamed", ("renamed", "st", "S")),
        ("anything", ("anything", ["state", "states"])),
    ],
)
def test_call_declared_passes_what_each_signature_asks_for(method, expected):
    """Names that match are passed by name; otherwise by position in the documented order."""
    assert call_declared(getattr(Hooks(), method), ORDERS, state="st", states="S") == expected


def test_call_declared_refuses_an_unsupported_shape():
    """A hook with more parameters than any supported form names the forms."""
    with pytest.raises(
        TypeError,
        match=r"takes parameters \['a', 'b', 'c'\]; nbflow can call it with \(states\) or \(state, states\)",
    ):
        call_declared(Hooks().too_many, ORDERS, state=1, states=2)


def test_call_declared_works_on_plain_functions():
    """Unbound functions are called the same way."""

    def reduce(states):
        return states

    assert call_declared(reduce, ORDERS, state=1, states=2) == 2
