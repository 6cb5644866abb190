"""The pieces of the tagged JSON format that every serde module shares.

`nbflow.persistence.serde` holds the registry, the encoder and decoder and the
standard-library types; `_serde_numpy` and `_serde_pandas` hold the numpy and
pandas types. All of them use these helpers, so they live here, below all three,
and the data modules need not import serde (which imports them).
"""

from __future__ import annotations

import base64
import datetime as dt
import reprlib
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

TAG = "__nbflow__"

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40


# -- failures, with the path they happened at ---------------------------------------------------------


class _Failure(Exception):
    """Raised inside the recursion; the public functions turn it into a `SerializationError`.

    Containers append their key on the way up, so a successful call pays nothing
    for path tracking.
    """

    def __init__(self, detail: str, *, unsupported: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.unsupported = unsupported  # the value's type is unknown, so a pickle may stand in
        self.segments: list[tuple[str, Any]] = []


def _each(kind: str, labelled: Iterable[tuple[Any, Any]], convert: Callable[[Any], Any]) -> Iterator[Any]:
    """``convert(value)`` for each ``(label, value)``; a failure records where it happened on its way up.

    ``kind`` is how `_where` writes the label: ``"key"``, ``"index"``, ``"attr"`` or ``"other"``.
    """
    label = None
    try:
        for label, value in labelled:  # noqa: B007 (label is read in the except clause)
            yield convert(value)
    except _Failure as failure:
        failure.segments.append((kind, label))
        raise


class _Encoder(Protocol):
    """What the type modules need of serde's encoder (serde imports them, so they cannot import it)."""

    def enc(self, value: Any) -> Any: ...
    def seq(self, items: Any) -> list: ...
    def at(self, label: str, value: Any) -> Any: ...


class _Decoder(Protocol):
    """What the type modules need of serde's decoder."""

    def dec(self, data: Any) -> Any: ...
    def seq(self, items: list) -> list: ...
    def require(self, module: str, what: str) -> Any: ...


def _where(root: str, segments: list[tuple[str, Any]]) -> str:
    out = root
    for i, (kind, key) in enumerate(reversed(segments)):
        if kind == "key":
            # 'state' + key 'model' reads "state key 'model'"; deeper keys are just "-> 'model'".
            out += f" key {_REPR.repr(key)}" if i == 0 else f" -> {_REPR.repr(key)}"
        elif kind == "index":
            out += f" -> [{key}]"
        elif kind == "attr":
            out += f" -> .{key}"
        else:
            out += f" -> {key}"
    return out


def _type_name(cls: type) -> str:
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _unsupported_detail(cls: type, why: str) -> str:
    return f"{_type_name(cls)} is not a type nbflow can store as JSON{why}. Register it with nbflow.register_serde({cls.__name__}, tag=..., encode=..., decode=...), or pass allow_pickle=True to store it as a pickle (only load pickles you trust)."


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode("ascii")


# -- time zones, shared by datetimes and pandas timestamps ----------------------------------------------


def _tz_json(tz: dt.tzinfo | None, moment: dt.datetime | None) -> Any:
    if tz is None:
        return None
    if isinstance(tz, zoneinfo.ZoneInfo) and tz.key is not None:
        return {"zone": tz.key}
    if type(tz) is dt.timezone:
        return {"offset": tz.utcoffset(None).total_seconds()}
    if isinstance(getattr(tz, "zone", None), str):
        return {"zone": tz.zone}  # pytz: comes back as the ZoneInfo of the same name
    # dateutil and friends: keep the offset in effect at that moment.
    offset = tz.utcoffset(moment)
    if offset is None:
        raise _Failure(
            _unsupported_detail(type(tz), " (a time zone without a fixed offset)"), unsupported=True
        )
    return {"offset": offset.total_seconds()}


def _tz_from_json(data: Any) -> dt.tzinfo | None:
    if data is None:
        return None
    if "zone" in data:
        return zoneinfo.ZoneInfo(data["zone"])
    return dt.timezone(dt.timedelta(seconds=data["offset"]))
