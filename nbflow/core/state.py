"""`State`: the immutable mapping every action reads from and writes to.

Why not a copied dict (Apache Burr copies the whole dict on every update)? At
10,000 keys that makes each one-key update cost a 10,000-entry copy, and
``append`` copies the list too, so a loop that appends grows quadratically.

nbflow keeps a shared, never-mutated ``_base`` dict plus a small ``_delta`` of
recent changes. An update copies only the delta. When the delta outgrows about
sqrt(len(base)) entries it is folded into a new base, so a single-key update
costs O(sqrt(n)) amortized (a few hundred C-level dict operations at 10,000
keys) while every read stays one or two dict lookups and keys keep their
insertion order.

Lists grown with ``append``/``extend`` are held as `StateList` views over a
shared backing list. A view covers a prefix of the backing list, so an append
to the newest state extends that list in place (amortized O(1)) and older
states still see their shorter prefix. Appending to an older state, whose
prefix is no longer the whole list, copies the prefix first.
"""

from __future__ import annotations

import html
import itertools
import numbers
import reprlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from nbflow.errors import ActionContractError, StateKeyError, StateValueError

__all__ = ["State", "StateList", "known_keys"]

_ABSENT = object()
_DELETED = object()
_MIN_DELTA = 16

# One lock for all StateLists: the check-then-extend of an append must be atomic when
# threads append to the same state, and an uncontended lock costs ~50 ns.
_APPEND_LOCK = threading.Lock()

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8


class StateList(Sequence):
    """A read-only list held in a `State`, grown by ``append``/``extend`` in amortized O(1).

    It compares equal to lists and tuples with the same items, and
    `State.get_all` turns it into a plain ``list``.
    """

    __slots__ = ("_items", "_n")

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._items = list(items)
        self._n = len(self._items)

    @classmethod
    def _wrap(cls, items: list, n: int) -> StateList:
        view = cls.__new__(cls)
        view._items = items
        view._n = n
        return view

    def _extended(self, values: Sequence[Any]) -> StateList:
        items = self._items
        with _APPEND_LOCK:
            if len(items) == self._n:
                items.extend(values)
                return StateList._wrap(items, len(items))
        # Another state already grew the backing list past our prefix: branch off a copy.
        fresh = items[: self._n]
        fresh.extend(values)
        return StateList._wrap(fresh, len(fresh))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._items[i] for i in range(self._n)[index]]
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            msg = f"StateList index out of range (length {self._n})"
            raise IndexError(msg)
        return self._items[index]

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(self._items, self._n)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, StateList)):
            return len(other) == self._n and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Iterable[Any]) -> list:
        return [*self, *other]

    def __radd__(self, other: Iterable[Any]) -> list:
        return [*other, *self]

    def __repr__(self) -> str:
        return repr(list(self))

    def __reduce__(self):
        # Pickle only the visible prefix, never the shared backing list.
        return (StateList, (list(self),))


class State(Mapping):
    """An immutable mapping of string keys to values.

    Every "mutating" method returns a new `State` and leaves this one as it was,
    which is what makes it safe to hand one state to many concurrent tasks.
    Values themselves are not copied: do not mutate a list or dict after you put
    it in a state.

    Example:
        >>> s = State(count=0)
        >>> s2 = s.update(count=1).append(history="a")
        >>> s["count"], s2["count"], list(s2["history"])
        (0, 1, ['a'])
    """

    __slots__ = ("_base", "_delta", "_len", "_scope", "_written")

    def __init__(self, initial: Mapping[str, Any] | None = None, /, **values: Any) -> None:
        base = dict(initial) if initial is not None else {}
        base.update(values)
        for key in base:
            if not isinstance(key, str):
                msg = f"State keys must be strings; got {key!r} ({type(key).__name__}). Convert it with str() or use a string name."
                raise TypeError(msg)
        self._base = base
        self._delta: dict = {}
        self._len = len(base)
        self._scope: _Scope | None = None
        self._written: dict = {}

    # -- construction -------------------------------------------------------------------

    def _derive(self, base: dict, delta: dict, length: int, touched: Iterable[str]) -> State:
        new = State.__new__(State)
        new._base = base
        new._delta = delta
        new._len = length
        new._scope = self._scope
        # A dict, not a set: the order keys were written in must not depend on string hashing.
        new._written = (
            {**self._written, **dict.fromkeys(touched)} if self._scope is not None else self._written
        )
        return new

    def _with(self, changes: Mapping[str, Any]) -> State:
        """A new state with ``changes`` applied; a value of `_DELETED` removes the key."""
        base, delta = self._base, dict(self._delta)
        length = self._len
        for key, value in changes.items():
            current = delta.get(key, _ABSENT)
            if current is _DELETED and value is not _DELETED:
                # A deleted key that comes back belongs at the end, as in a dict; folding first
                # drops it from the base so that it does.
                base, delta, current = _fold(base, delta), {}, _ABSENT
            present = (current is not _ABSENT and current is not _DELETED) or (
                current is _ABSENT and key in base
            )
            if value is _DELETED:
                if not present:
                    continue
                length -= 1
                if key in base:
                    delta[key] = _DELETED
                else:
                    del delta[key]
            else:
                if not isinstance(key, str):
                    msg = f"State keys must be strings; got {key!r} ({type(key).__name__}). Convert it with str() or use a string name."
                    raise TypeError(msg)
                if not present:
                    length += 1
                delta[key] = value
        if len(delta) > max(_MIN_DELTA, int(len(base) ** 0.5)):
            base, delta = _fold(base, delta), {}
        return self._derive(base, delta, length, changes)

    # -- the Mapping protocol -------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        # The hottest path in the engine: one dict lookup when the delta is empty or misses.
        delta = self._delta
        if delta and key in delta:
            value = delta[key]
            if value is _DELETED:
                raise self._missing(key)
            return value
        try:
            return self._base[key]
        except KeyError:
            raise self._missing(key) from None

    def __contains__(self, key: object) -> bool:
        value = self._delta.get(key, _ABSENT)  # type: ignore[call-overload]
        if value is _ABSENT:
            return key in self._base
        return value is not _DELETED

    def get(self, key: str, default: Any = None) -> Any:
        value = self._delta.get(key, _ABSENT)
        if value is _ABSENT:
            value = self._base.get(key, _ABSENT)
        if value is _ABSENT or value is _DELETED:
            return default
        return value

    def __iter__(self) -> Iterator[str]:
        delta = self._delta
        if not delta:
            yield from self._base
            return
        for key in self._base:
            if delta.get(key, _ABSENT) is not _DELETED:
                yield key
        for key, value in delta.items():
            if value is not _DELETED and key not in self._base:
                yield key

    def __len__(self) -> int:
        return self._len

    def __eq__(self, other: object) -> bool:
        if isinstance(other, State):
            if other._base is self._base and other._delta == self._delta:
                return True
            return self._len == other._len and self._raw() == other._raw()
        if isinstance(other, Mapping):
            return self._raw() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):
        return (State, (self._raw(),))

    # -- reading --------------------------------------------------------------------------

    def _raw(self) -> dict:
        return _fold(self._base, self._delta) if self._delta else dict(self._base)

    def get_all(self) -> dict:
        """A new plain ``dict`` of every key, with `StateList` values turned into lists."""
        return {k: list(v) if isinstance(v, StateList) else v for k, v in self._raw().items()}

    def keys_list(self) -> list[str]:
        """The keys in insertion order, as a list (handy in error messages and reprs)."""
        return list(self)

    def _missing(self, key: str) -> KeyError:
        if self._scope is not None:
            return self._scope.undeclared_read(key)
        msg = f"State has no key {key!r}. Known keys: {known_keys(self)}. Add {key!r} to the initial state or to an upstream action's writes."
        return StateKeyError(msg)

    # -- deriving new states ---------------------------------------------------------------

    def update(self, **values: Any) -> State:
        """A new state with ``values`` set (added or replaced)."""
        return self._with(values)

    def append(self, **values: Any) -> State:
        """A new state with each value appended to the list under its key (created if missing)."""
        return self._with({key: self._grown(key, (value,)) for key, value in values.items()})

    def extend(self, **values: Iterable[Any]) -> State:
        """A new state with each iterable's items appended to the list under its key."""
        return self._with({key: self._grown(key, tuple(value)) for key, value in values.items()})

    def _grown(self, key: str, items: Sequence[Any]) -> StateList:
        current = self.get(key, _ABSENT)
        if current is _ABSENT:
            return StateList(items)
        if isinstance(current, StateList):
            return current._extended(items)
        if isinstance(current, (list, tuple)):
            return StateList([*current, *items])
        msg = f"Cannot append to state key {key!r}: it holds {type(current).__name__}, not a list. Use update({key}=...) to replace it, or append to a list-valued key."
        raise StateValueError(msg)

    def increment(self, **deltas: int | float) -> State:
        """A new state with each key's number increased by its delta (a missing key counts as 0)."""
        changes = {}
        for key, delta in deltas.items():
            current = self.get(key, 0)
            for what, value in (("it holds", current), ("the increment is", delta)):
                if not isinstance(value, numbers.Number) or isinstance(value, bool):
                    msg = f"Cannot increment state key {key!r}: {what} {type(value).__name__} {value!r}, not a number. Use update({key}=...) instead."
                    raise StateValueError(msg)
            changes[key] = current + delta
        return self._with(changes)

    def wipe(self, keep: Iterable[str] | None = None, delete: Iterable[str] | None = None) -> State:
        """A new state with only the keys in ``keep``, or without the keys in ``delete``.

        Exactly one of the two must be given. Naming a key the state lacks is not
        an error: the result simply does not have it.
        """
        if (keep is None) == (delete is None):
            msg = "State.wipe() takes exactly one of keep=[...] or delete=[...]."
            raise ValueError(msg)
        if delete is not None:
            return self._with(dict.fromkeys(_as_keys(delete, "delete"), _DELETED))
        kept = set(_as_keys(keep, "keep"))
        return self._with({k: _DELETED for k in self if k not in kept})

    def subset(self, *keys: str, ignore_missing: bool = False) -> State:
        """A new state holding only ``keys``.

        Raises:
            StateKeyError: a key is missing and ``ignore_missing`` is false.
        """
        values = {}
        for key in keys:
            value = self.get(key, _ABSENT)
            if value is _ABSENT:
                if not ignore_missing:
                    raise self._missing(key)
                continue
            values[key] = value
        return State(values)

    def merge(self, other: Mapping[str, Any]) -> State:
        """A new state with every key of ``other`` set; ``other`` wins on shared keys."""
        if isinstance(other, State):
            return self._with(other._raw())
        if not isinstance(other, Mapping):
            msg = f"State.merge() takes a State or a mapping; got {type(other).__name__}."
            raise TypeError(msg)
        return self._with(other)

    # -- display ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        items = list(self._raw().items())
        shown = ", ".join(f"{k!r}: {_REPR.repr(v)}" for k, v in items[:50])
        more = f", ... ({len(items) - 50} more keys)" if len(items) > 50 else ""
        return f"State({{{shown}{more}}})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(type(v).__name__)}</td>"
            f"<td><code>{html.escape(_REPR.repr(v))}</code></td></tr>"
            for k, v in itertools.islice(self._raw().items(), 200)
        )
        more = f"<tr><td colspan=3>… {self._len - 200} more keys</td></tr>" if self._len > 200 else ""
        return (
            f"<table><caption>State ({self._len} keys)</caption>"
            f"<thead><tr><th>key</th><th>type</th><th>value</th></tr></thead>"
            f"<tbody>{rows}{more}</tbody></table>"
        )


def _fold(base: dict, delta: dict) -> dict:
    merged = {**base, **delta}
    for key, value in delta.items():
        if value is _DELETED:
            del merged[key]
    return merged


def known_keys(keys: Iterable[str], limit: int = 20) -> str:
    """Keys for an error message: sorted, and cut short past ``limit`` so a big state stays readable."""
    names = sorted(keys)
    if len(names) <= limit:
        return repr(names)
    return f"{names[:limit]!r} and {len(names) - limit} more"


def _as_keys(keys: Iterable[str], parameter: str) -> list[str]:
    if isinstance(keys, str):
        # wipe(keep="a") would otherwise keep the keys "a"... one character at a time.
        return [keys]
    try:
        return list(keys)
    except TypeError:
        msg = f"State.wipe({parameter}=...) takes a list of keys; got {type(keys).__name__}."
        raise TypeError(msg) from None


class _Scope:
    """What an action declared, attached to the view of state the action runs on.

    Reads of undeclared keys fail with a message that names the action, and every
    state derived from the view remembers which keys the action wrote.
    """

    __slots__ = ("action", "reads")

    def __init__(self, action: str, reads: Sequence[str]) -> None:
        self.action = action
        self.reads = reads

    def undeclared_read(self, key: str) -> KeyError:
        msg = f"Action {self.action!r} read {key!r}, which is not among its reads {list(self.reads)}. Add {key!r} to reads=[...] in its declaration."
        return ActionContractError(msg)

    def view(self, state: State, keys: Iterable[str]) -> State:
        """The part of ``state`` an action may see: its declared keys that exist."""
        values = {}
        for key in keys:
            value = state.get(key, _ABSENT)
            if value is not _ABSENT:
                values[key] = value
        view = State(values)
        view._scope = self
        return view


def written_by(view: State, result: State) -> tuple[dict, list[str]]:
    """What an action changed: ``(keys set -> values, keys deleted)``.

    ``result`` is what the action returned when it was given ``view``. A state
    derived from the view knows what it wrote; any other state counts as a full
    replacement of the view.
    """
    if result._scope is view._scope and view._scope is not None:
        changed = {k: result[k] for k in result._written if k in result}
        deleted = [k for k in result._written if k not in result]
        return changed, deleted
    changed = {}
    for key, value in result._raw().items():
        if view.get(key, _ABSENT) is not value:
            changed[key] = value
    deleted = [k for k in view if k not in result]
    return changed, deleted


def apply_changes(state: State, changed: Mapping[str, Any], deleted: Iterable[str]) -> State:
    """``state`` with an action's changes applied, in one derivation."""
    changes = dict(changed)
    for key in deleted:
        changes[key] = _DELETED
    return state._with(changes) if changes else state
