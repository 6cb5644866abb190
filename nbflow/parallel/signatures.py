"""Calling user hooks with only the parameters they declare.

The Burr reference shows hooks in a short form (``states(self, state)``,
``reduce(self, states)``) and a long one (``states(self, state, context,
inputs)``, ``reduce(self, state, states)``). nbflow accepts both: when every
parameter is named like a value on offer, each gets its value by name;
otherwise they are filled by position, in the documented order for that many
parameters.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["call_declared", "takes_parameter"]


@functools.lru_cache(maxsize=1024)
def _parameters(func: Callable, bound: bool) -> tuple[tuple[str, ...], bool]:
    params = list(inspect.signature(func).parameters.values())[1 if bound else 0 :]
    names = tuple(
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def call_declared(fn: Callable, positional: Mapping[int, tuple[str, ...]], /, **offered: Any) -> Any:
    """Call ``fn`` with the ``offered`` values it declares.

    Args:
        fn: a bound method or a function.
        positional: for a hook whose parameter names are not all on offer, which
            offered names fill its parameters, by how many it has.
        **offered: every value the hook may ask for.
    """
    func = getattr(fn, "__func__", fn)
    names, takes_any = _parameters(func, func is not fn)
    if takes_any:
        return fn(**offered)
    if all(n in offered for n in names):
        return fn(**{n: offered[n] for n in names})
    if len(names) not in positional:
        shapes = " or ".join(f"({', '.join(v)})" for v in positional.values())
        msg = f"{getattr(fn, '__qualname__', fn)} takes parameters {list(names)}; nbflow can call it with {shapes}."
        raise TypeError(msg)
    return fn(*(offered[n] for n in positional[len(names)]))


def takes_parameter(fn: Callable, name: str) -> bool:
    """Whether ``fn`` (a function or bound method) takes a value called ``name``, or any keyword.

    A hook with two or more parameters not all named like the values on offer takes
    ``state`` by position (``reduce(self, s, subs)``), so it counts as taking it too.
    """
    func = getattr(fn, "__func__", fn)
    names, takes_any = _parameters(func, func is not fn)
    return takes_any or name in names or len(names) >= 2
