"""Transition conditions: `when`, `expr`, `default`, combined with ``~``, ``&`` and ``|``.

Every condition knows the state keys it reads, so a graph can check them at
build time and a failing evaluation can name the key. `expr` strings are parsed
once, checked against a small whitelist of Python syntax (comparisons,
arithmetic, boolean logic, subscripts, a few pure builtins) and compiled, so a
condition can neither import nor call arbitrary code.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from typing import Any

from nbflow.core.state import State, known_keys
from nbflow.errors import ConditionError

__all__ = ["Condition", "when", "expr", "default"]

_SAFE_FUNCTIONS: dict[str, Callable] = {
    f.__name__: f for f in (len, abs, min, max, sum, any, all, round, int, float, str, bool, sorted)
}
_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call,
    ast.Constant, ast.Name, ast.Load, ast.Subscript, ast.Slice, ast.Attribute, ast.Tuple,
    ast.List, ast.Set, ast.Dict, ast.keyword,
    ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Invert,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot,
)  # fmt: skip


class Condition:
    """A predicate over state that decides whether a transition is taken.

    Args:
        keys: the state keys the predicate reads.
        predicate: a function of the state returning a truthy value.
        name: how the condition reads in drawings and error messages.
    """

    __slots__ = ("_predicate", "keys", "name")

    def __init__(self, keys: Iterable[str], predicate: Callable[[State], Any], name: str) -> None:
        self.keys = tuple(dict.fromkeys(keys))
        self._predicate = predicate
        self.name = name

    def __call__(self, state: State) -> bool:
        for key in self.keys:
            if key not in state:
                msg = f"Condition {self.name} reads state key {key!r}, which the state lacks. State keys: {known_keys(state)}. Add {key!r} to the initial state or to the writes of an earlier action."
                raise ConditionError(msg)
        return bool(self._predicate(state))

    def __invert__(self) -> Condition:
        return Condition(self.keys, lambda s: not self._predicate(s), f"not ({self.name})")

    def __and__(self, other: Condition) -> Condition:
        other = _condition(other)
        return Condition(
            (*self.keys, *other.keys),
            lambda s: self._predicate(s) and other._predicate(s),
            f"({self.name}) and ({other.name})",
        )

    def __or__(self, other: Condition) -> Condition:
        other = _condition(other)
        return Condition(
            (*self.keys, *other.keys),
            lambda s: self._predicate(s) or other._predicate(s),
            f"({self.name}) or ({other.name})",
        )

    def __repr__(self) -> str:
        return f"Condition({self.name})"


def _condition(obj: Any) -> Condition:
    if isinstance(obj, Condition):
        return obj
    msg = (
        f"Conditions combine with other conditions (when(...), expr(...), default); got {type(obj).__name__}."
    )
    raise TypeError(msg)


def when(**values: Any) -> Condition:
    """True when every named state key equals its value.

    Example:
        >>> when(done=True)(State(done=True))
        True
    """
    if not values:
        msg = "when() needs at least one key=value pair, e.g. when(done=True); use `default` for an unconditional transition."
        raise ConditionError(msg)
    items = tuple(values.items())
    name = ", ".join(f"{k}={v!r}" for k, v in items)
    return Condition(values, lambda s: all(s[k] == v for k, v in items), name)


def expr(source: str) -> Condition:
    """A condition written as a Python expression over state keys, e.g. ``expr("count > 10")``.

    Raises:
        ConditionError: the expression does not parse or uses syntax outside the whitelist.
    """
    if not isinstance(source, str):
        msg = f"expr() takes a string such as 'count > 10'; got {type(source).__name__}."
        raise ConditionError(msg)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        msg = f"Condition expression {source!r} does not parse ({exc.msg}). Write a Python expression over state keys, e.g. expr('count > 10')."
        raise ConditionError(msg) from None
    keys = []
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            msg = f"Condition expression {source!r} uses {type(node).__name__}, which conditions do not allow. Use comparisons, arithmetic, and/or/not, subscripts and {sorted(_SAFE_FUNCTIONS)}."
            raise ConditionError(msg)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            msg = f"Condition expression {source!r} reads the private attribute {node.attr!r}; conditions may only read public attributes."
            raise ConditionError(msg)
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _SAFE_FUNCTIONS
        ):
            msg = f"Condition expression {source!r} calls {ast.unparse(node.func)}; conditions may only call {sorted(_SAFE_FUNCTIONS)}."
            raise ConditionError(msg)
        if isinstance(node, ast.Name) and node.id not in _SAFE_FUNCTIONS:
            keys.append(node.id)
    code = compile(tree, f"<expr {source!r}>", "eval")
    env = {"__builtins__": {}, **_SAFE_FUNCTIONS}
    return Condition(keys, lambda s: eval(code, env, s), repr(source))


default = Condition((), lambda s: True, "default")
