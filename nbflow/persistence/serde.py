"""Turning state values into JSON and back, exactly.

Plain JSON data (str, int, finite float, bool, None, lists, dicts with string
keys) is stored as itself. Everything else becomes a tagged object,
``{"__nbflow__": "<tag>", "v": <payload>}``, whose payload is again JSON. A
round trip gives back an equal value of the same type: tuples stay tuples,
``nan`` stays a float, an ``int64`` column stays ``int64``.

Built in: tuples, sets, frozensets, bytes, bytearrays, complex numbers, dicts
with non-string keys, nan/inf, datetime/date/time/timedelta and their time
zones, Decimal, UUID, pathlib paths, enum members, dataclasses and named
tuples (by import path), pydantic v2 models, numpy arrays and scalars, pandas
DataFrames, Series, Indexes and scalars, and `StateList` (stored as a list).
`register_serde` adds more; a user registration wins over the built-ins.

numpy, pandas and pydantic are never imported here: a value is recognised by
its type's module, and the package is looked up in ``sys.modules`` (it must be
loaded already if one of its objects exists). Decoding imports them on demand.

Anything else raises `SerializationError`, unless ``allow_pickle=True``, in
which case it is stored as a pickle. Loading a pickle also needs
``allow_pickle=True``, because unpickling runs code.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import importlib
import json
import pathlib
import pickle
import re
import reprlib
import sys
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any, NamedTuple

from nbflow.core.state import StateList
from nbflow.errors import SerializationError

__all__ = ["to_json", "from_json", "dumps", "loads", "register_serde", "unregister_serde"]

TAG = "__nbflow__"

_SCALARS = (str, int, float, bool, type(None))
# Their instances are JSON as they are; registering them would make every payload recurse forever.
_NATIVE = frozenset([*_SCALARS, list, dict])
_FLOAT_NAMES = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40
_MISSING = object()


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


# -- the registry --------------------------------------------------------------------------------------


class _Registration(NamedTuple):
    cls: type
    tag: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


_USER_BY_TYPE: dict[type, _Registration] = {}
_USER_BY_TAG: dict[str, _Registration] = {}
# type -> how to encode it (or None: unsupported). Cleared on every registration; capped so that
# classes redefined over and over in a notebook do not pile up.
_DISPATCH: dict[type, Callable | None] = {}
_DISPATCH_LIMIT = 4096


def register_serde(
    cls: type, *, tag: str, encode: Callable[[Any], Any], decode: Callable[[Any], Any]
) -> None:
    """Teach nbflow to store instances of ``cls`` (and of its subclasses) as JSON.

    ``encode`` turns an instance into anything `to_json` handles (a dict of
    arrays is fine); ``decode`` receives that payload, already decoded, and
    returns the instance. A registration wins over nbflow's built-in handling of
    the same type. A subclass without its own registration uses its nearest
    registered base class. Registering a class again, or a class with the same
    module and name (a notebook cell run twice), replaces the old registration.

    Args:
        cls: the class to store.
        tag: a name for the stored payload, unique among registrations; it is
            written into the JSON, so keep it stable across versions.
        encode: instance -> JSON-able payload.
        decode: payload -> instance.

    Raises:
        SerializationError: ``cls`` is not a class or is a JSON type, ``tag`` is
            empty or taken, or ``encode``/``decode`` is not callable.

    Example:
        >>> from fractions import Fraction
        >>> register_serde(
        ...     Fraction,
        ...     tag="fraction",
        ...     encode=lambda f: [f.numerator, f.denominator],
        ...     decode=lambda v: Fraction(*v),
        ... )
        >>> loads(dumps(Fraction(1, 3)))
        Fraction(1, 3)
        >>> unregister_serde(Fraction)
    """
    if not isinstance(cls, type):
        msg = f"register_serde() takes a class; got {_REPR.repr(cls)} ({type(cls).__name__}). Pass the class itself, e.g. register_serde(type(value), ...)."
        raise SerializationError(msg)
    if cls in _NATIVE:
        msg = f"register_serde() cannot take {cls.__name__}: its instances are stored as JSON already. Register a subclass of it instead."
        raise SerializationError(msg)
    if not isinstance(tag, str) or not tag or tag == TAG:
        msg = f"register_serde({cls.__name__}, tag={tag!r}) needs a non-empty string tag, such as tag={cls.__name__.lower()!r}."
        raise SerializationError(msg)
    if tag in _BUILTIN_DECODERS:
        msg = f"register_serde({cls.__name__}, tag={tag!r}): {tag!r} is a built-in tag. Choose another, such as tag={f'{cls.__module__}.{cls.__qualname__}'!r}."
        raise SerializationError(msg)
    for name, function in (("encode", encode), ("decode", decode)):
        if not callable(function):
            msg = f"register_serde({cls.__name__}, tag={tag!r}) needs a callable {name}=; got {type(function).__name__}."
            raise SerializationError(msg)
    owner = _USER_BY_TAG.get(tag)
    if owner is not None and owner.cls is not cls and _import_path(owner.cls) != _import_path(cls):
        msg = f"register_serde({cls.__name__}, tag={tag!r}): the tag is already used by {_type_name(owner.cls)}. Choose another tag, or call unregister_serde({owner.cls.__name__}) first."
        raise SerializationError(msg)
    if owner is not None:
        _USER_BY_TYPE.pop(owner.cls, None)
    unregister_serde(cls)
    registration = _Registration(cls, tag, encode, decode)
    _USER_BY_TYPE[cls] = registration
    _USER_BY_TAG[tag] = registration
    _DISPATCH.clear()


def unregister_serde(cls: type) -> None:
    """Forget the registration of ``cls``, if any; built-in handling applies again."""
    registration = _USER_BY_TYPE.pop(cls, None)
    if registration is not None:
        _USER_BY_TAG.pop(registration.tag, None)
    _DISPATCH.clear()


# -- encoding --------------------------------------------------------------------------------------------


def to_json(value: Any, *, allow_pickle: bool = False, path: str = "value") -> Any:
    """``value`` as JSON-compatible data that `from_json` turns back into an equal value.

    Args:
        value: what to store.
        allow_pickle: store a value of an unsupported type as a pickle instead of
            raising.
        path: what to call ``value`` in error messages, e.g. ``"state"``.

    Returns:
        dicts with string keys, lists, str, int, finite float, bool and None.

    Raises:
        SerializationError: a value (at the path the message names) has a type
            nbflow cannot store, or could not be pickled.

    Example:
        >>> to_json({"lr": 0.1, "shape": (3, 4)})
        {'lr': 0.1, 'shape': {'__nbflow__': 'tuple', 'v': [3, 4]}}
    """
    try:
        return _Encoder(allow_pickle).enc(value)
    except _Failure as failure:
        msg = f"Cannot serialize {_where(path, failure.segments)}: {failure.detail}"
        raise SerializationError(msg) from failure.__cause__
    except RecursionError:
        msg = f"Cannot serialize {path}: it is nested too deeply or contains itself (a reference cycle). Store a flatter structure, or break the cycle."
        raise SerializationError(msg) from None


def dumps(value: Any, *, allow_pickle: bool = False, path: str = "value") -> str:
    """``value`` as compact JSON text (see `to_json`).

    Example:
        >>> dumps({"x": float("nan")})
        '{"x":{"__nbflow__":"float","v":"nan"}}'
    """
    data = to_json(value, allow_pickle=allow_pickle, path=path)
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


class _Encoder:
    __slots__ = ("allow_pickle",)

    def __init__(self, allow_pickle: bool) -> None:
        self.allow_pickle = allow_pickle

    def enc(self, value: Any) -> Any:
        cls = type(value)
        if cls is str or cls is int or cls is bool or value is None:
            return value
        if cls is float:
            return value if value - value == 0 else {TAG: "float", "v": repr(value)}
        if cls is list:
            return self.seq(value)
        if cls is dict:
            return self.mapping(value)
        handler = _DISPATCH.get(cls, _MISSING)
        if handler is _MISSING:
            handler = _resolve(cls)
        try:
            if handler is None:
                raise _Failure(_unsupported_detail(cls, ""), unsupported=True)
            return handler(value, self)
        except _Failure as failure:
            if failure.unsupported and self.allow_pickle and not failure.segments:
                return self.pickled(value)
            raise
        except RecursionError:
            raise
        except Exception as exc:
            if _user_registration(cls) is not None:
                msg = f"the encode= function registered for {_type_name(cls)} raised {type(exc).__name__}: {exc}. Fix it, or register_serde() it again."
            else:
                msg = f"encoding {_type_name(cls)} raised {type(exc).__name__}: {exc}. Register it with nbflow.register_serde() to take over its encoding, or pass allow_pickle=True."
            raise _Failure(msg) from exc

    def seq(self, items: Any) -> list:
        out = []
        i = 0
        try:
            for i, item in enumerate(items):  # noqa: B007 (i is read in the except clause)
                out.append(self.enc(item))
        except _Failure as failure:
            failure.segments.append(("index", i))
            raise
        return out

    def mapping(self, value: dict) -> Any:
        if all(type(k) is str for k in value) and TAG not in value:
            out = {}
            key = None
            try:
                for key, item in value.items():
                    out[key] = self.enc(item)
            except _Failure as failure:
                failure.segments.append(("key", key))
                raise
            return out
        # Non-string keys (or a user key that looks like our tag): a tagged list of pairs.
        pairs = []
        for key, item in value.items():
            pairs.append([self.at(f"(the key {_REPR.repr(key)})", key), self.at_key(key, item)])
        return {TAG: "dict", "v": pairs}

    def at_key(self, key: Any, value: Any) -> Any:
        try:
            return self.enc(value)
        except _Failure as failure:
            failure.segments.append(("key", key))
            raise

    def fields(self, named: dict[str, Any]) -> dict[str, Any]:
        out = {}
        name = None
        try:
            for name, item in named.items():
                out[name] = self.enc(item)
        except _Failure as failure:
            failure.segments.append(("attr", name))
            raise
        return out

    def at(self, label: str, value: Any) -> Any:
        try:
            return self.enc(value)
        except _Failure as failure:
            failure.segments.append(("other", label))
            raise

    def pickled(self, value: Any) -> dict:
        try:
            import cloudpickle  # a dependency of nbflow, but only needed on this path

            dump = cloudpickle.dumps
        except ImportError:
            dump = pickle.dumps
        try:
            blob = dump(value)
        except Exception as exc:
            name = _type_name(type(value))
            msg = f"{name} is not a type nbflow can store as JSON, and pickling it failed with {type(exc).__name__}: {exc}. Register it with nbflow.register_serde({type(value).__name__}, tag=..., encode=..., decode=...)."
            raise _Failure(msg) from exc
        return {TAG: "pickle", "v": {"type": _type_name(type(value)), "b64": _b64(blob)}}


def _unsupported_detail(cls: type, why: str) -> str:
    return f"{_type_name(cls)} is not a type nbflow can store as JSON{why}. Register it with nbflow.register_serde({cls.__name__}, tag=..., encode=..., decode=...), or pass allow_pickle=True to store it as a pickle (only load pickles you trust)."


def _user_registration(cls: type) -> _Registration | None:
    if not _USER_BY_TYPE:
        return None
    for base in cls.__mro__:
        registration = _USER_BY_TYPE.get(base)
        if registration is not None:
            return registration
    return None


def _resolve(cls: type) -> Callable | None:
    handler = _find_handler(cls)
    if len(_DISPATCH) >= _DISPATCH_LIMIT:
        _DISPATCH.clear()
    _DISPATCH[cls] = handler
    return handler


def _find_handler(cls: type) -> Callable | None:
    registration = _user_registration(cls)
    if registration is not None:
        tag, encode = registration.tag, registration.encode
        return lambda value, e: {TAG: tag, "v": e.enc(encode(value))}
    handler = _BUILTIN_ENCODERS.get(cls)
    if handler is not None:
        return handler
    if issubclass(cls, enum.Enum):
        return _importable(cls, "an enum", _enc_enum)
    if dataclasses.is_dataclass(cls):
        return _importable(cls, "a dataclass", _enc_dataclass)
    if issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple):
        return _importable(cls, "a named tuple", _enc_namedtuple)
    module = cls.__module__ or ""
    if module.startswith("numpy") and "numpy" in sys.modules:
        return _numpy_handler(cls)
    if module.startswith("pandas") and "pandas" in sys.modules:
        return _pandas_handler(cls)
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        return _importable(cls, "a pydantic model", _enc_pydantic)
    return None


def _import_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _importable(cls: type, kind: str, handler: Callable) -> Callable:
    """``handler``, or one that reports why ``cls`` cannot be found again by its import path."""
    if _IMPORT_PATH.match(_import_path(cls)):
        return handler

    def not_importable(value: Any, e: _Encoder) -> Any:
        why = f" ({kind}, but it is defined inside a function or is generic, so '{_import_path(cls)}' cannot be imported when loading; define it at module level)"
        raise _Failure(_unsupported_detail(cls, why), unsupported=True)

    return not_importable


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode("ascii")


def _enc_tuple(value: tuple, e: _Encoder) -> dict:
    return {TAG: "tuple", "v": e.seq(value)}


def _enc_set(value: set | frozenset, e: _Encoder) -> dict:
    items = e.seq(value)
    # Sets have no order; sort so equal sets give equal JSON (cache keys, diffs).
    try:
        items.sort()
    except TypeError:
        items.sort(key=lambda item: json.dumps(item, sort_keys=True))
    return {TAG: type(value).__name__, "v": items}


def _enc_complex(value: complex, e: _Encoder) -> dict:
    return {TAG: "complex", "v": [e.enc(value.real), e.enc(value.imag)]}


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


def _enc_datetime_or_time(value: dt.datetime | dt.time, e: _Encoder) -> dict:
    tag = "datetime" if type(value) is dt.datetime else "time"
    naive = value.replace(tzinfo=None, fold=0).isoformat()
    if value.tzinfo is None and not value.fold:
        return {TAG: tag, "v": naive}
    moment = value if tag == "datetime" else None
    return {TAG: tag, "v": {"iso": naive, "tz": _tz_json(value.tzinfo, moment), "fold": value.fold}}


def _dec_datetime_or_time(cls: type) -> Callable:
    def decode(v: Any, d: _Decoder) -> Any:
        if isinstance(v, str):
            return cls.fromisoformat(v)
        return cls.fromisoformat(v["iso"]).replace(tzinfo=_tz_from_json(v["tz"]), fold=v["fold"])

    return decode


def _enc_path(value: pathlib.PurePath, e: _Encoder) -> dict:
    return {TAG: "path", "v": {"cls": type(value).__name__, "path": str(value)}}


_PATH_CLASSES = {"Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath"}


def _dec_path(v: Any, d: _Decoder) -> pathlib.PurePath:
    if v["cls"] not in _PATH_CLASSES:
        msg = f"{v['cls']!r} is not a pathlib class; expected one of {sorted(_PATH_CLASSES)}"
        raise ValueError(msg)
    cls = getattr(pathlib, v["cls"])
    try:
        return cls(v["path"])
    except (NotImplementedError, TypeError):
        # A WindowsPath loaded on Linux (or the reverse) cannot be concrete; keep its flavour.
        pure = pathlib.PureWindowsPath if v["cls"] == "WindowsPath" else pathlib.PurePosixPath
        return pure(v["path"])


def _enc_enum(value: enum.Enum, e: _Encoder) -> dict:
    cls = type(value)
    if value.name is not None and cls.__members__.get(value.name) is value:
        return {TAG: "enum", "v": {"cls": _import_path(cls), "name": value.name}}
    # A combination of Flag members has no single name: store its value.
    return {TAG: "enum", "v": {"cls": _import_path(cls), "value": e.enc(value.value)}}


def _dec_enum(v: Any, d: _Decoder) -> enum.Enum:
    cls = d.import_class(v["cls"], lambda c: issubclass(c, enum.Enum), "an enum")
    return cls[v["name"]] if "name" in v else cls(d.at("value", v["value"]))


def _enc_dataclass(value: Any, e: _Encoder) -> dict:
    named = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return {TAG: "dataclass", "v": {"cls": _import_path(type(value)), "fields": e.fields(named)}}


def _dec_dataclass(v: Any, d: _Decoder) -> Any:
    cls = d.import_class(v["cls"], dataclasses.is_dataclass, "a dataclass")
    values = d.fields(v["fields"])
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    obj = cls(**{k: x for k, x in values.items() if k in init})
    for name, x in values.items():
        if name not in init:
            # Not an __init__ argument, so set it as it was (object.__setattr__ also works when frozen).
            object.__setattr__(obj, name, x)
    return obj


def _enc_namedtuple(value: tuple, e: _Encoder) -> dict:
    return {TAG: "namedtuple", "v": {"cls": _import_path(type(value)), "items": e.seq(value)}}


def _dec_namedtuple(v: Any, d: _Decoder) -> tuple:
    cls = d.import_class(v["cls"], lambda c: issubclass(c, tuple) and hasattr(c, "_fields"), "a named tuple")
    return cls(*d.seq(v["items"]))


def _enc_pydantic(value: Any, e: _Encoder) -> dict:
    # The attributes themselves, not model_dump(): a dump turns nested dataclasses and subclass
    # instances into dicts, and validating those dicts would not give back the same types.
    cls = type(value)
    named = {name: getattr(value, name) for name in cls.model_fields}
    named.update(value.model_extra or {})
    return {TAG: "pydantic", "v": {"cls": _import_path(cls), "fields": e.fields(named)}}


def _dec_pydantic(v: Any, d: _Decoder) -> Any:
    pydantic = d.require("pydantic", "a pydantic model")
    cls = d.import_class(v["cls"], lambda c: issubclass(c, pydantic.BaseModel), "a pydantic model")
    return cls.model_validate(d.fields(v["fields"]), by_name=True)


_BUILTIN_ENCODERS: dict[type, Callable[[Any, _Encoder], Any]] = {
    tuple: _enc_tuple,
    set: _enc_set,
    frozenset: _enc_set,
    bytes: lambda value, e: {TAG: "bytes", "v": _b64(value)},
    bytearray: lambda value, e: {TAG: "bytearray", "v": _b64(value)},
    complex: _enc_complex,
    dt.datetime: _enc_datetime_or_time,
    dt.time: _enc_datetime_or_time,
    dt.date: lambda value, e: {TAG: "date", "v": value.isoformat()},
    dt.timedelta: lambda value, e: {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]},
    dt.timezone: lambda value, e: {TAG: "tzinfo", "v": _tz_json(value, None)},
    zoneinfo.ZoneInfo: lambda value, e: {TAG: "tzinfo", "v": _tz_json(value, None)},
    decimal.Decimal: lambda value, e: {TAG: "decimal", "v": str(value)},
    uuid.UUID: lambda value, e: {TAG: "uuid", "v": str(value)},
    pathlib.Path: _enc_path,
    pathlib.PosixPath: _enc_path,
    pathlib.WindowsPath: _enc_path,
    pathlib.PurePath: _enc_path,
    pathlib.PurePosixPath: _enc_path,
    pathlib.PureWindowsPath: _enc_path,
    StateList: lambda value, e: e.seq(value),
}


# -- decoding --------------------------------------------------------------------------------------------


def from_json(data: Any, *, allow_pickle: bool = False, path: str = "value") -> Any:
    """The value `to_json` turned into ``data``.

    Args:
        data: JSON data, as `json.loads` returns it.
        allow_pickle: unpickle values that were stored as pickles. Unpickling
            runs code, so pass True only for data you trust.
        path: what to call ``data`` in error messages.

    Raises:
        SerializationError: a tag nothing is registered for, a pickle while
            ``allow_pickle`` is false, or a payload that does not decode.

    Example:
        >>> from_json({"shape": {"__nbflow__": "tuple", "v": [3, 4]}})
        {'shape': (3, 4)}
    """
    try:
        return _Decoder(allow_pickle).dec(data)
    except _Failure as failure:
        msg = f"Cannot load {_where(path, failure.segments)}: {failure.detail}"
        raise SerializationError(msg) from failure.__cause__
    except RecursionError:
        msg = f"Cannot load {path}: it is nested too deeply for Python's recursion limit. Raise it with sys.setrecursionlimit()."
        raise SerializationError(msg) from None


def loads(text: str | bytes, *, allow_pickle: bool = False, path: str = "value") -> Any:
    """The value `dumps` turned into ``text`` (see `from_json`).

    Raises:
        json.JSONDecodeError: ``text`` is not JSON (a ValueError).
        SerializationError: as `from_json`.

    Example:
        >>> loads('{"shape":{"__nbflow__":"tuple","v":[3,4]}}')
        {'shape': (3, 4)}
    """
    return from_json(json.loads(text), allow_pickle=allow_pickle, path=path)


class _Decoder:
    __slots__ = ("allow_pickle",)

    def __init__(self, allow_pickle: bool) -> None:
        self.allow_pickle = allow_pickle

    def dec(self, data: Any) -> Any:
        cls = type(data)
        if cls is dict:
            tag = data.get(TAG, _MISSING)
            if tag is _MISSING:
                return self.mapping(data)
            return self.tagged(tag, data)
        if cls is list:
            return self.seq(data)
        if cls in _SCALARS:
            return data
        msg = (
            f"{_type_name(cls)} is not JSON data. Pass what json.loads() returns, or use loads() on the text."
        )
        raise _Failure(msg)

    def tagged(self, tag: Any, data: dict) -> Any:
        if type(tag) is not str or "v" not in data or len(data) != 2:
            msg = f"{_REPR.repr(data)} is a malformed tagged value: it needs exactly the keys {TAG!r} (a string) and 'v'. Was it written by nbflow's dumps()?"
            raise _Failure(msg)
        payload = data["v"]
        registration = _USER_BY_TAG.get(tag)
        try:
            if registration is not None:
                return registration.decode(self.dec(payload))
            decoder = _BUILTIN_DECODERS.get(tag)
            if decoder is None:
                msg = f"it was stored with tag {tag!r}, and no type is registered for that tag. Call nbflow.register_serde(<the class>, tag={tag!r}, encode=..., decode=...) before loading."
                raise _Failure(msg)
            return decoder(payload, self)
        except (_Failure, RecursionError):
            raise
        except Exception as exc:
            if registration is not None:
                msg = f"the decode= function registered for tag {tag!r} ({_type_name(registration.cls)}) raised {type(exc).__name__}: {exc}. Fix it, or register_serde() it again."
            else:
                msg = f"decoding tag {tag!r} raised {type(exc).__name__}: {exc}. The stored data is damaged, or was written by an incompatible version."
            raise _Failure(msg) from exc

    def seq(self, items: list) -> list:
        out = []
        i = 0
        try:
            for i, item in enumerate(items):  # noqa: B007 (i is read in the except clause)
                out.append(self.dec(item))
        except _Failure as failure:
            failure.segments.append(("index", i))
            raise
        return out

    def mapping(self, data: dict) -> dict:
        out = {}
        key = None
        try:
            for key, item in data.items():
                out[key] = self.dec(item)
        except _Failure as failure:
            failure.segments.append(("key", key))
            raise
        return out

    def pairs(self, pairs: list) -> dict:
        out = {}
        i = 0
        try:
            for i, (key, item) in enumerate(pairs):  # noqa: B007 (i is read in the except clause)
                out[self.dec(key)] = self.dec(item)
        except _Failure as failure:
            failure.segments.append(("index", i))
            raise
        return out

    def fields(self, named: dict) -> dict:
        out = {}
        name = None
        try:
            for name, item in named.items():
                out[name] = self.dec(item)
        except _Failure as failure:
            failure.segments.append(("attr", name))
            raise
        return out

    def at(self, label: str, data: Any) -> Any:
        try:
            return self.dec(data)
        except _Failure as failure:
            failure.segments.append(("other", label))
            raise

    def require(self, module: str, what: str) -> Any:
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            msg = f"it holds {what}, but {module} is not installed. Install it with pip install {module}."
            raise _Failure(msg) from exc

    def import_class(self, path: str, check: Callable[[type], bool], kind: str) -> type:
        module_name, _, qualname = path.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            msg = f"it holds {kind} of class '{path}', which cannot be imported ({type(exc).__name__}: {exc}). Import or define that class first, under the same module and name."
            raise _Failure(msg) from exc
        # Only a class of the expected kind: a crafted file must not get an arbitrary callable called.
        if not isinstance(obj, type) or not check(obj):
            msg = f"it names '{path}' as {kind}, but that is {_type_name(type(obj))}. The file does not match the code; was the class renamed?"
            raise _Failure(msg)
        return obj

    def unpickle(self, v: dict) -> Any:
        if not self.allow_pickle:
            msg = f"it holds a pickled {v.get('type', 'object')}. Unpickling runs arbitrary code, so nbflow refuses it by default; pass allow_pickle=True only for files you trust."
            raise _Failure(msg)
        return pickle.loads(base64.b64decode(v["b64"]))


def _dec_float(v: Any, d: _Decoder) -> float:
    return _FLOAT_NAMES[v]


_BUILTIN_DECODERS: dict[str, Callable[[Any, _Decoder], Any]] = {
    "tuple": lambda v, d: tuple(d.seq(v)),
    "set": lambda v, d: set(d.seq(v)),
    "frozenset": lambda v, d: frozenset(d.seq(v)),
    "dict": lambda v, d: d.pairs(v),
    "float": _dec_float,
    "bytes": lambda v, d: base64.b64decode(v, validate=True),
    "bytearray": lambda v, d: bytearray(base64.b64decode(v, validate=True)),
    "complex": lambda v, d: complex(*d.seq(v)),
    "datetime": _dec_datetime_or_time(dt.datetime),
    "time": _dec_datetime_or_time(dt.time),
    "date": lambda v, d: dt.date.fromisoformat(v),
    "timedelta": lambda v, d: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "tzinfo": lambda v, d: _tz_from_json(v),
    "decimal": lambda v, d: decimal.Decimal(v),
    "uuid": lambda v, d: uuid.UUID(v),
    "path": _dec_path,
    "enum": _dec_enum,
    "dataclass": _dec_dataclass,
    "namedtuple": _dec_namedtuple,
    "pydantic": _dec_pydantic,
    "pickle": lambda v, d: d.unpickle(v),
}


# -- numpy ----------------------------------------------------------------------------------------------

# Fixed-size dtypes whose raw bytes are the whole value: bool, ints, floats, complex, datetime64,
# timedelta64, bytes and unicode strings, and structured records of those.
_RAW_KINDS = frozenset("biufcmMSUV")


def _numpy_handler(cls: type) -> Callable | None:
    np = sys.modules["numpy"]
    if cls is np.ndarray:
        return _enc_ndarray
    if issubclass(cls, np.generic):
        return _enc_numpy_scalar
    return None


def _dtype_json(dtype: Any, e: _Encoder, cls: type) -> Any:
    np = sys.modules["numpy"]
    if dtype.kind not in _RAW_KINDS or dtype.hasobject:
        why = f" (of dtype {dtype}, whose items are not fixed-size numbers or strings)"
        raise _Failure(_unsupported_detail(cls, why), unsupported=True)
    return e.enc(np.lib.format.dtype_to_descr(dtype))


def _dtype_from_json(data: Any, d: _Decoder) -> Any:
    np = d.require("numpy", "a numpy array")
    return np.lib.format.descr_to_dtype(d.dec(data))


def _enc_ndarray(value: Any, e: _Encoder) -> dict:
    shape = list(value.shape)
    if value.dtype.kind == "O":
        return {TAG: "numpy.ndarray", "v": {"dtype": "O", "shape": shape, "items": e.seq(value.ravel())}}
    dtype = _dtype_json(value.dtype, e, type(value))
    return {TAG: "numpy.ndarray", "v": {"dtype": dtype, "shape": shape, "b64": _b64(value.tobytes())}}


def _dec_ndarray(v: Any, d: _Decoder) -> Any:
    np = d.require("numpy", "a numpy array")
    shape = tuple(v["shape"])
    if v["dtype"] == "O":
        items = d.seq(v["items"])
        out = np.empty(len(items), dtype=object)
        # Item by item: np.array(items) would turn equal-length lists into a 2-d array.
        for i, item in enumerate(items):
            out[i] = item
        return out.reshape(shape)
    dtype = _dtype_from_json(v["dtype"], d)
    # frombuffer gives a read-only view of the bytes; copy so the array is writable, like the original.
    return np.frombuffer(base64.b64decode(v["b64"]), dtype=dtype).reshape(shape).copy()


def _enc_numpy_scalar(value: Any, e: _Encoder) -> dict:
    dtype = value.dtype
    if dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize <= 8):
        # Readable in the file, and exact: these fit a Python bool/int/float.
        return {TAG: "numpy.scalar", "v": {"dtype": dtype.str, "item": e.enc(value.item())}}
    return {
        TAG: "numpy.scalar",
        "v": {"dtype": _dtype_json(dtype, e, type(value)), "b64": _b64(value.tobytes())},
    }


def _dec_numpy_scalar(v: Any, d: _Decoder) -> Any:
    np = d.require("numpy", "a numpy scalar")
    if "item" in v:
        return np.dtype(v["dtype"]).type(d.dec(v["item"]))
    return np.frombuffer(base64.b64decode(v["b64"]), dtype=_dtype_from_json(v["dtype"], d))[0]


_BUILTIN_DECODERS.update({"numpy.ndarray": _dec_ndarray, "numpy.scalar": _dec_numpy_scalar})


# -- pandas ---------------------------------------------------------------------------------------------
#
# A DataFrame is stored column by column, each column by its dtype, so that int64 stays int64,
# datetime64[us, Europe/Berlin] keeps its unit and zone, and a str column does not come back as
# object. Index and columns are stored as Indexes (RangeIndex, MultiIndex, freq included).


def _pandas_handler(cls: type) -> Callable | None:
    pd = sys.modules["pandas"]
    if cls is pd.DataFrame:
        return _enc_dataframe
    if cls is pd.Series:
        return _enc_series
    if issubclass(cls, pd.Index):
        return lambda value, e: {TAG: "pandas.Index", "v": _index_json(value, e)}
    if cls is pd.Timestamp:
        return _enc_timestamp
    if cls is pd.Timedelta:
        return lambda value, e: {TAG: "pandas.Timedelta", "v": e.enc(value.to_timedelta64())}
    if cls is pd.Period:
        return lambda value, e: {TAG: "pandas.Period", "v": {"ordinal": value.ordinal, "freq": value.freqstr}}
    if cls is pd.Interval:
        return _enc_interval
    if cls is type(pd.NaT):
        return lambda value, e: {TAG: "pandas.NaT", "v": None}
    if cls is type(pd.NA):
        return lambda value, e: {TAG: "pandas.NA", "v": None}
    return None


def _array_json(owner: Any, e: _Encoder) -> dict:
    """The values of a Series or an Index, by dtype."""
    np = sys.modules["numpy"]
    pd = sys.modules["pandas"]
    # owner.dtype, not owner.array.dtype: for numpy-backed data the latter is a wrapper dtype.
    dtype, arr = owner.dtype, owner.array
    if isinstance(dtype, np.dtype):
        return {"kind": "numpy", "values": e.enc(np.asarray(arr))}
    if isinstance(dtype, pd.DatetimeTZDtype):
        utc = np.asarray(arr.tz_convert("UTC").tz_localize(None))
        return {"kind": "datetimetz", "unit": dtype.unit, "tz": _tz_json(dtype.tz, None), "utc": e.enc(utc)}
    if isinstance(dtype, pd.StringDtype):
        na = "nan" if dtype.na_value is not pd.NA else "NA"
        values = [None if x is pd.NA or x != x else x for x in arr]
        return {"kind": "string", "storage": dtype.storage, "na": na, "values": values}
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.asarray(arr.codes)
        categories = _index_json(dtype.categories, e)
        return {"kind": "category", "codes": e.enc(codes), "categories": categories, "ordered": dtype.ordered}
    if isinstance(arr, (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)):
        # Int64, Float64, boolean...: the numbers plus the mask of missing ones.
        mask = np.asarray(arr.isna())
        data = arr.to_numpy(dtype=dtype.numpy_dtype, na_value=False if dtype.kind == "b" else 0)
        return {"kind": "masked", "dtype": str(dtype), "data": e.enc(data), "mask": e.enc(mask)}
    if isinstance(dtype, pd.PeriodDtype):
        return {"kind": "period", "dtype": str(dtype), "ordinals": e.enc(np.asarray(arr.asi8))}
    if isinstance(dtype, pd.IntervalDtype):
        left, right = _array_json(arr.left, e), _array_json(arr.right, e)
        return {"kind": "interval", "dtype": str(dtype), "left": left, "right": right}
    # Anything else (sparse, pyarrow...): its items, rebuilt with pd.array.
    items = [None if x is pd.NA else x for x in arr.astype(object)]
    return {"kind": "other", "dtype": str(dtype), "items": e.seq(items)}


def _array_from_json(v: dict, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas object")
    kind = v["kind"]
    if kind == "numpy":
        return d.dec(v["values"])
    if kind == "datetimetz":
        utc = pd.DatetimeIndex(d.dec(v["utc"])).tz_localize("UTC")
        return utc.tz_convert(_tz_from_json(v["tz"])).array
    if kind == "string":
        na = pd.NA if v["na"] == "NA" else float("nan")
        return pd.array(v["values"], dtype=pd.StringDtype(storage=v["storage"], na_value=na))
    if kind == "category":
        categories = _index_from_json(v["categories"], d)
        dtype = pd.CategoricalDtype(categories, ordered=v["ordered"])
        return pd.Categorical.from_codes(d.dec(v["codes"]), dtype=dtype)
    dtype = pd.api.types.pandas_dtype(v["dtype"])
    if kind == "masked":
        return dtype.construct_array_type()(d.dec(v["data"]), d.dec(v["mask"]))
    if kind == "period":
        return pd.arrays.PeriodArray(d.dec(v["ordinals"]), dtype=dtype)
    if kind == "interval":
        left, right = _array_from_json(v["left"], d), _array_from_json(v["right"], d)
        return pd.arrays.IntervalArray.from_arrays(left, right, closed=dtype.closed, dtype=dtype)
    return pd.array(d.seq(v["items"]), dtype=dtype)


def _index_json(index: Any, e: _Encoder) -> dict:
    pd = sys.modules["pandas"]
    name = e.at("(the index name)", index.name) if not isinstance(index, pd.MultiIndex) else None
    if type(index) is pd.RangeIndex:
        return {"kind": "range", "range": [index.start, index.stop, index.step], "name": name}
    if isinstance(index, pd.MultiIndex):
        return {
            "kind": "multi",
            "levels": [_index_json(level, e) for level in index.levels],
            "codes": [e.enc(c) for c in index.codes],
            "names": e.at("(the index names)", list(index.names)),
        }
    out = {"kind": "index", "array": _array_json(index, e), "name": name}
    freq = getattr(index, "freqstr", None)
    if freq is not None and not isinstance(index, pd.PeriodIndex):
        out["freq"] = freq
    return out


def _index_from_json(v: dict, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas object")
    kind = v["kind"]
    if kind == "range":
        return pd.RangeIndex(*v["range"], name=d.dec(v["name"]))
    if kind == "multi":
        levels = [_index_from_json(level, d) for level in v["levels"]]
        codes = [d.dec(c) for c in v["codes"]]
        return pd.MultiIndex(levels=levels, codes=codes, names=d.dec(v["names"]))
    arr = _array_from_json(v["array"], d)
    name = d.dec(v["name"])
    freq = v.get("freq")
    if freq is not None:
        cls = pd.TimedeltaIndex if arr.dtype.kind == "m" else pd.DatetimeIndex
        return cls(arr, freq=freq, name=name)
    # dtype= keeps an object array of strings object (pandas 3 would infer str).
    return pd.Index(arr, dtype=arr.dtype, name=name)


def _enc_series(value: Any, e: _Encoder) -> dict:
    out = {
        "name": e.at("(the series name)", value.name),
        "index": _index_json(value.index, e),
        "values": _array_json(value, e),
    }
    if value.attrs:
        out["attrs"] = e.at("(attrs)", dict(value.attrs))
    return {TAG: "pandas.Series", "v": out}


def _dec_series(v: Any, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas Series")
    values = _array_from_json(v["values"], d)
    index = _index_from_json(v["index"], d)
    series = pd.Series(values, index=index, dtype=values.dtype, name=d.dec(v["name"]))
    if "attrs" in v:
        series.attrs = d.dec(v["attrs"])
    return series


def _enc_dataframe(value: Any, e: _Encoder) -> dict:
    columns = []
    for i in range(value.shape[1]):
        try:
            columns.append(_array_json(value.iloc[:, i], e))
        except _Failure as failure:
            failure.segments.append(("other", f"column {_REPR.repr(value.columns[i])}"))
            raise
    out = {"index": _index_json(value.index, e), "columns": _index_json(value.columns, e), "data": columns}
    if value.attrs:
        out["attrs"] = e.at("(attrs)", dict(value.attrs))
    return {TAG: "pandas.DataFrame", "v": out}


def _dec_dataframe(v: Any, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas DataFrame")
    index = _index_from_json(v["index"], d)
    arrays = [_array_from_json(column, d) for column in v["data"]]
    # Positions as labels, and the real labels and index set afterwards: column labels may repeat,
    # and an index with repeated labels must not take part in alignment.
    rows = pd.RangeIndex(len(index))
    frame = pd.DataFrame(
        {i: pd.Series(a, index=rows, dtype=a.dtype) for i, a in enumerate(arrays)}, index=rows
    )
    frame.index = index
    frame.columns = _index_from_json(v["columns"], d)
    if "attrs" in v:
        frame.attrs = d.dec(v["attrs"])
    return frame


def _enc_timestamp(value: Any, e: _Encoder) -> dict:
    utc = value.tz_convert("UTC").tz_localize(None) if value.tzinfo is not None else value
    return {
        TAG: "pandas.Timestamp",
        "v": {"utc": e.enc(utc.to_datetime64()), "tz": _tz_json(value.tzinfo, None)},
    }


def _dec_timestamp(v: Any, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas Timestamp")
    ts = pd.Timestamp(d.dec(v["utc"]))
    tz = _tz_from_json(v["tz"])
    return ts if tz is None else ts.tz_localize("UTC").tz_convert(tz)


def _enc_interval(value: Any, e: _Encoder) -> dict:
    bounds = [e.at("(left)", value.left), e.at("(right)", value.right)]
    return {TAG: "pandas.Interval", "v": {"bounds": bounds, "closed": value.closed}}


def _dec_interval(v: Any, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas Interval")
    return pd.Interval(*d.seq(v["bounds"]), closed=v["closed"])


def _dec_timedelta(v: Any, d: _Decoder) -> Any:
    pd = d.require("pandas", "a pandas Timedelta")
    return pd.Timedelta(d.dec(v))


_BUILTIN_DECODERS.update(
    {
        "pandas.DataFrame": _dec_dataframe,
        "pandas.Series": _dec_series,
        "pandas.Index": lambda v, d: _index_from_json(v, d),
        "pandas.Timestamp": _dec_timestamp,
        "pandas.Timedelta": _dec_timedelta,
        "pandas.Period": lambda v, d: d.require("pandas", "a pandas Period").Period(**v),
        "pandas.Interval": _dec_interval,
        "pandas.NaT": lambda v, d: d.require("pandas", "pandas.NaT").NaT,
        "pandas.NA": lambda v, d: d.require("pandas", "pandas.NA").NA,
    }
)
