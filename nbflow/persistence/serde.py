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
The numpy and pandas encoders and decoders live in `_serde_numpy` and
`_serde_pandas`; the helpers all of them share, in `_serde_base`.

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
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any, NamedTuple

from nbflow.core.state import StateList
from nbflow.errors import SerializationError
from nbflow.fingerprint.families import family
from nbflow.persistence._serde_base import (
    _REPR,
    TAG,
    _b64,
    _each,
    _Failure,
    _type_name,
    _tz_from_json,
    _tz_json,
    _unsupported_detail,
    _where,
)
from nbflow.persistence._serde_numpy import _NUMPY_DECODERS, _NUMPY_ENCODERS
from nbflow.persistence._serde_pandas import _PANDAS_DECODERS, _PANDAS_ENCODERS
from nbflow.persistence.curves import TaskCurves
from nbflow.persistence.logs import TaskLogs

__all__ = ["to_json", "from_json", "dumps", "loads", "register_serde", "unregister_serde"]

_SCALARS = (str, int, float, bool, type(None))
# Their instances are JSON as they are; registering them would make every payload recurse forever.
_NATIVE = frozenset([*_SCALARS, list, dict])
_FLOAT_NAMES = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_MISSING = object()


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


def registrations() -> tuple[_Registration, ...]:
    """Every `register_serde` registration, to send to worker processes (see `install`)."""
    return tuple(_USER_BY_TYPE.values())


def install(registered: tuple[_Registration, ...]) -> None:
    """Register, in this process, what `registrations` gave in another one (a worker's parent)."""
    for registration in registered:
        if _USER_BY_TYPE.get(registration.cls) != registration:
            register_serde(
                registration.cls, tag=registration.tag, encode=registration.encode, decode=registration.decode
            )


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


def _plain_json(value: Any) -> bool:
    """Whether ``value`` is its own JSON form: a string, an int, a bool, None or a finite float."""
    cls = type(value)
    return cls is str or cls is int or cls is bool or value is None or (cls is float and value - value == 0)


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
        if all(map(_plain_json, items)):
            return list(items)  # the common case (a row of numbers) needs no walk
        return list(_each("index", enumerate(items), self.enc))

    def mapping(self, value: dict) -> Any:
        if all(type(k) is str for k in value) and TAG not in value:
            if all(map(_plain_json, value.values())):
                return dict(value)
            return dict(zip(value, _each("key", value.items(), self.enc), strict=True))
        # Non-string keys (or a user key that looks like our tag): a tagged list of pairs.
        pairs = [
            [self.at(f"(the key {_REPR.repr(key)})", key), *_each("key", [(key, item)], self.enc)]
            for key, item in value.items()
        ]
        return {TAG: "dict", "v": pairs}

    def fields(self, named: dict[str, Any]) -> dict[str, Any]:
        return dict(zip(named, _each("attr", named.items(), self.enc), strict=True))

    def at(self, label: str, value: Any) -> Any:
        return next(_each("other", [(label, value)], self.enc))

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
    kind = family(cls)
    if kind is None:
        return None
    found = _BY_IMPORT_PATH.get(kind)
    if found is not None:
        return _importable(cls, *found)
    return _NUMPY_ENCODERS.get(kind) or _PANDAS_ENCODERS[kind]


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


# The families stored by import path, with how to name each in an error.
_BY_IMPORT_PATH = {
    "enum": ("an enum", _enc_enum),
    "dataclass": ("a dataclass", _enc_dataclass),
    "namedtuple": ("a named tuple", _enc_namedtuple),
    "pydantic": ("a pydantic model", _enc_pydantic),
}

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
    TaskLogs: lambda value, e: {TAG: "tasklogs", "v": value.to_dict()},
    TaskCurves: lambda value, e: {TAG: "taskcurves", "v": e.enc(value.to_dict())},
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
        if all(type(item) in _SCALARS for item in items):
            return list(items)  # the common case (a cached row of numbers) needs no walk
        return list(_each("index", enumerate(items), self.dec))

    def mapping(self, data: dict) -> dict:
        if all(type(value) in _SCALARS for value in data.values()):
            return dict(data)
        return dict(zip(data, _each("key", data.items(), self.dec), strict=True))

    def pairs(self, pairs: list) -> dict:
        return dict(_each("index", enumerate(pairs), lambda pair: (self.dec(pair[0]), self.dec(pair[1]))))

    def fields(self, named: dict) -> dict:
        return dict(zip(named, _each("attr", named.items(), self.dec), strict=True))

    def at(self, label: str, data: Any) -> Any:
        return next(_each("other", [(label, data)], self.dec))

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
    "tasklogs": lambda v, d: TaskLogs({int(k): str(text) for k, text in v.items()}),
    "taskcurves": lambda v, d: TaskCurves(d.dec(v)),
    **_NUMPY_DECODERS,
    **_PANDAS_DECODERS,
}
