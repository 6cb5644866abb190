"""The data half of the fingerprint encoder: chunks, containers, numpy, pandas, objects.

`nbflow.fingerprint.code` adds the code half (functions, classes, actions,
graphs) by subclassing `ValueEncoder`. The two halves are mutually recursive,
since a value can hold a function and a function's defaults, closures and
globals are values; this module never imports the code half. Every piece goes
into the hash as a tagged, length-prefixed chunk (`Tag`), so the encoding is
prefix-free and two different structures cannot produce the same byte stream.
"""

from __future__ import annotations

import copyreg
import dataclasses
import functools
import hashlib
import struct
import sys
import types
from typing import Any, ClassVar

from nbflow.core.actions import Action
from nbflow.core.conditions import Condition
from nbflow.core.graph import Graph
from nbflow.core.state import State, StateList
from nbflow.fingerprint.families import family
from nbflow.fingerprint.modules import is_user_module, package_version, type_name

__all__ = ["Tag", "ValueEncoder", "CODE_PERSON", "VALUE_PERSON", "BUILTIN_CALLABLES"]


class Tag:
    """One byte per kind of chunk in the stream a digest hashes.

    The format is versioned through the personalizations, `CODE_PERSON` and
    `VALUE_PERSON`: change either when a chunk's meaning changes, so that no
    digest of the old format can equal one of the new.
    """

    NONE, TRUE, FALSE, ELLIPSIS = b"N", b"T", b"F", b"E"
    INT, FLOAT, COMPLEX, STR, BYTES, BYTEARRAY = b"i", b"f", b"c", b"s", b"b", b"B"
    LIST, TUPLE, DICT, SET, SUBCLASS = b"l", b"t", b"d", b"S", b"y"
    DIGEST, CYCLE, BACKREF, OPAQUE = b"h", b"@", b"^", b"o"
    NDARRAY, NPSCALAR, PANDAS, DATACLASS, PYDANTIC, ENUM = b"a", b"A", b"p", b"D", b"P", b"n"
    PICKLE, OBJECT, WRAPPER = b"k", b"O", b"W"
    VERSION, CODE, FUNCTION, DOCSTRING, EMPTY_CELL, GLOBALS = b"v", b"X", b"x", b"_", b"e", b"g"
    REF, MODULE, CLASS, METHOD, PARTIAL = b"r", b"m", b"C", b"M", b"("
    ACTION, GRAPH, CONDITION, HOOKED = b"Q", b"G", b"?", b"H"


# blake2b's personalization keeps code and value digests in separate spaces.
CODE_PERSON = b"nbflow.code.2"
VALUE_PERSON = b"nbflow.value.2"

BUILTIN_CALLABLES = (
    types.BuiltinFunctionType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
)


def _wrapped(v: Any) -> Any:
    """The function a wrapper object stands for: ``__wrapped__`` (functools), ``pyfunc`` (np.vectorize)."""
    return getattr(v, "__wrapped__", None) or getattr(v, "pyfunc", None)


class ValueEncoder:
    """Feeds one object graph to a blake2b hash as tagged, length-prefixed chunks: the data half.

    `nbflow.fingerprint.code.CodeEncoder` adds the code half (functions,
    classes, actions, graphs) by overriding `_code_object` and `_class`.
    """

    def __init__(self, person: bytes, follow: tuple[str, ...]) -> None:
        self._person = person
        self._hash = hashlib.blake2b(digest_size=16, person=person)
        self._update = self._hash.update
        self._follow = follow
        # Objects on the current path (containers, functions, classes, actions) -> depth; meeting
        # one again is a cycle, written as its depth so that no id() reaches the digest.
        self._active: dict[int, int] = {}
        # Functions, classes and actions already written -> ordinal, so a helper that many
        # functions call is hashed once. Data is never deduplicated: [a, a] equals [a, copy(a)].
        self._seen: dict[int, int] = {}
        self._module: str | None = None
        # The user modules (not __main__) whose code was hashed: their files must be the ones
        # a worker process runs, too (see nbflow.persistence.code_files).
        self.user_modules: set[str] = set()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    # -- chunks --------------------------------------------------------------------------

    def put(self, tag: bytes, payload: bytes = b"") -> None:
        self._update(tag + len(payload).to_bytes(8, "little") + payload)

    def _count(self, tag: bytes, n: int) -> None:
        self._update(tag + n.to_bytes(8, "little"))

    def _str(self, s: str) -> None:
        self.put(Tag.STR, s.encode("utf-8", "surrogatepass"))

    def _sub(self, *, keep_seen: bool) -> ValueEncoder:
        sub = type(self)(self._person, self._follow)
        sub._active = dict(self._active)
        # A digest that is sorted among siblings (dict keys, set items) must not depend on which
        # sibling was hashed first, so it starts with nothing seen.
        sub._seen = dict(self._seen) if keep_seen else {}
        sub._module = self._module
        sub.user_modules = self.user_modules
        return sub

    def _digest_of(self, value: Any) -> bytes:
        sub = self._sub(keep_seen=False)
        sub.value(value)
        return sub._hash.digest()

    def _enter(self, obj: Any, *, dedupe: bool) -> bool:
        """Start writing ``obj``; False (after writing a reference) if it was written already."""
        key = id(obj)
        depth = self._active.get(key)
        if depth is not None:
            self.put(Tag.CYCLE, depth.to_bytes(4, "little"))
            return False
        if dedupe:
            ordinal = self._seen.get(key)
            if ordinal is not None:
                self.put(Tag.BACKREF, ordinal.to_bytes(4, "little"))
                return False
            self._seen[key] = len(self._seen)
        self._active[key] = len(self._active)
        return True

    def _leave(self, obj: Any) -> None:
        del self._active[id(obj)]

    def _is_user(self, module: str | None) -> bool:
        """Whether code from ``module`` is hashed by its code rather than by name and version."""
        if module is None or module == self._module or is_user_module(module):
            return True
        return any(module == p or module.startswith(f"{p}.") for p in self._follow)

    # -- data ----------------------------------------------------------------------------

    def value(self, v: Any) -> None:
        encode = self._EXACT.get(type(v))
        if encode is not None:
            encode(self, v)
        else:
            self._other(v)

    def _none(self, v: None) -> None:
        self.put(Tag.NONE)

    def _bool(self, v: bool) -> None:
        self.put(Tag.TRUE if v else Tag.FALSE)

    def _ellipsis(self, v: Any) -> None:
        self.put(Tag.ELLIPSIS)

    def _int(self, v: int) -> None:
        self.put(Tag.INT, int.to_bytes(v, (v.bit_length() + 8) // 8, "little", signed=True))

    def _float(self, v: float) -> None:
        self.put(Tag.FLOAT, struct.pack("<d", v))

    def _complex(self, v: complex) -> None:
        self.put(Tag.COMPLEX, struct.pack("<dd", v.real, v.imag))

    def _bytes(self, v: bytes) -> None:
        self.put(Tag.BYTES, v)

    def _bytearray(self, v: bytearray) -> None:
        self.put(Tag.BYTEARRAY, bytes(v))

    def _list(self, v: Any) -> None:
        if self._enter(v, dedupe=False):
            self._count(Tag.LIST, len(v))
            for item in v:
                self.value(item)
            self._leave(v)

    def _tuple(self, v: tuple) -> None:
        # A tuple can only reach itself through a list, dict or object, which catch the cycle.
        self._count(Tag.TUPLE, len(v))
        for item in v:
            self.value(item)

    def _dict(self, v: Any) -> None:
        if self._enter(v, dedupe=False):
            self._mapping(list(v.items()))
            self._leave(v)

    def _mapping(self, items: list[tuple[Any, Any]]) -> None:
        self._count(Tag.DICT, len(items))
        if all(type(k) is str for k, _ in items):
            # Strings sort the same in every process, so the common case needs no key digests.
            for k, item in sorted(items, key=lambda kv: kv[0]):
                self._str(k)
                self.value(item)
        else:
            for digest, item in sorted(((self._digest_of(k), item) for k, item in items), key=lambda d: d[0]):
                self.put(Tag.DIGEST, digest)
                self.value(item)

    def _set(self, v: Any) -> None:
        self._count(Tag.SET, len(v))
        for digest in sorted(self._digest_of(item) for item in v):
            self.put(Tag.DIGEST, digest)

    def _state(self, v: State) -> None:
        # A State equals the dict of its items, and fingerprints like it.
        self._mapping(list(v.items()))

    def _other(self, v: Any) -> None:
        t = type(v)
        if isinstance(v, (Action, Graph, Condition, type, types.MethodType, functools.partial)) or hasattr(
            t, "__nbflow_fingerprint__"
        ):
            self._code_object(v)
        elif isinstance(v, State):
            self._state(v)
        elif callable(v) and isinstance(_wrapped(v), types.FunctionType):
            # functools.lru_cache, np.vectorize and other wrappers: what they wrap decides the results.
            self.put(Tag.WRAPPER, type_name(t).encode())
            self.value(_wrapped(v))
        elif isinstance(v, BUILTIN_CALLABLES) or (
            callable(v) and hasattr(v, "__name__") and not self._is_user(t.__module__)
        ):
            # Builtins and function-like library objects (numpy ufuncs): by name and version.
            self._ref(v)
        elif (kind := family(t)) is not None and not _ours(t):
            self._FAMILIES[kind](self, v)
        elif isinstance(v, (list, tuple, dict, set, frozenset, str, int, float, bytes)):
            # OrderedDicts, str subclasses...: the type's name, then the builtin value.
            self.put(Tag.SUBCLASS, type_name(t).encode())
            base = next(b for b in t.__mro__ if b in self._EXACT)
            self._EXACT[base](self, v)
        elif _ours(t):
            # nbflow's own machinery (an application, a tracker, an executor in a closure)
            # computes nothing of the result; pickling it would be slow and may touch its hooks.
            self.put(Tag.OPAQUE, type_name(t).encode())
        else:
            self._pickled(v)

    def _enum(self, v: Any) -> None:
        # Its class as a class (by code, when the user's): a method of it may decide the results.
        self.put(Tag.ENUM)
        self.value(type(v))
        self._str(v.name)
        self.value(v.value)

    def _namedtuple(self, v: tuple) -> None:
        self.put(Tag.SUBCLASS, type_name(type(v)).encode())
        self._tuple(v)

    def _dataclass(self, v: Any) -> None:
        self._fields(Tag.DATACLASS, v, [f.name for f in dataclasses.fields(v)])

    def _pydantic(self, v: Any) -> None:
        t = type(v)
        fields = getattr(t, "model_fields", None) or getattr(t, "__fields__", {})
        self._fields(Tag.PYDANTIC, v, list(fields))

    def _fields(self, tag: bytes, v: Any, names: list[str]) -> None:
        if self._enter(v, dedupe=False):
            self.put(tag, type_name(type(v)).encode())
            self._count(Tag.DICT, len(names))
            for name in names:
                self._str(name)
                self.value(getattr(v, name))
            self._leave(v)

    def _ndarray(self, v: Any, tag: bytes = Tag.NDARRAY) -> None:
        np = sys.modules["numpy"]
        dtype = v.dtype
        self.put(tag, dtype.str.encode())
        self.value(dtype.descr if dtype.names else None)
        self.value(v.shape)
        if dtype.hasobject:
            # The buffer of an object array holds pointers; hash the objects it points to.
            self.value(v.ravel().tolist())
        else:
            flat = np.ascontiguousarray(v).reshape(-1).view(np.uint8)
            self._count(Tag.BYTES, flat.nbytes)
            self._update(flat)

    def _numpy_scalar(self, v: Any) -> None:
        self._ndarray(sys.modules["numpy"].asarray(v), Tag.NPSCALAR)

    def _pandas(self, v: Any) -> None:
        pd = sys.modules["pandas"]
        self.put(Tag.PANDAS, type_name(type(v)).encode())
        index = v if isinstance(v, pd.Index) else v.index
        self.value([str(t) for t in getattr(index, "dtypes", [index.dtype])])
        self.value(list(index.names))
        self._pandas_values(index)
        if isinstance(v, pd.DataFrame):
            self.value(list(v.columns))
            self.value([str(t) for t in v.dtypes])
            for _, column in v.items():
                self._pandas_values(column)
        elif isinstance(v, pd.Series):
            self.value(v.name)
            self.value(str(v.dtype))
            self._pandas_values(v)

    def _pandas_values(self, values: Any) -> None:
        if values.dtype == object:
            # hash_pandas_object hashes str(cell) here, so 1 and "1" (or two objects whose repr
            # shows only an address) would collide; object columns are hashed cell by cell.
            self.value(values.tolist())
        else:
            pd = sys.modules["pandas"]
            self._ndarray(pd.util.hash_pandas_object(values, index=False).to_numpy())

    def _pickled(self, v: Any) -> None:
        t = type(v)
        plain = (
            t.__reduce_ex__ is object.__reduce_ex__
            and t.__reduce__ is object.__reduce__
            and t not in copyreg.dispatch_table
        )
        try:
            reduced = v.__reduce_ex__(5) if plain or t not in copyreg.dispatch_table else None
            if reduced is None:
                reduced = copyreg.dispatch_table[t](v)
        except Exception as exc:
            msg = f"Cannot fingerprint a {type_name(t)} value: it is not plain data and pickle fails ({type(exc).__name__}: {exc}). Build the object inside the action from plain inputs (a path, a seed, parameters) instead of passing it in."
            raise TypeError(msg) from exc
        if isinstance(reduced, str):
            # Pickled by name (a module-level singleton).
            self.put(Tag.REF, f"{t.__module__}:{reduced}".encode())
            return
        if self._enter(v, dedupe=False):
            # What pickle would save (how to rebuild it, then its state), hashed item by item
            # rather than as pickle bytes: those would name a user function held inside (a
            # SimpleNamespace of callbacks) without its code, follow the hash-seeded order of a
            # set, and tell a shared object from an equal copy by their memo.
            rebuild, args, state, items, pairs = (*reduced, None, None, None)[:5]
            self.put(Tag.OBJECT)
            if not plain:
                self.value(rebuild)
            self.value(args)
            self.value(state)
            self.value(None if items is None else list(items))
            self.value(None if pairs is None else dict(pairs))
            self._leave(v)

    def _best_effort(self, v: Any) -> None:
        """``v`` as data if it can be fingerprinted at all, else only its type's name."""
        sub = self._sub(keep_seen=True)
        try:
            sub.value(v)
        except TypeError:
            self.put(Tag.OPAQUE, type_name(type(v)).encode())
            return
        self._seen = sub._seen
        self.put(Tag.DIGEST, sub._hash.digest())

    def _ref(self, obj: Any) -> None:
        module = getattr(obj, "__module__", None) or type(obj).__module__
        name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__qualname__
        self.put(Tag.REF, f"{module}:{name}".encode())
        self.put(Tag.VERSION, package_version(module).encode())

    def _module_ref(self, module: types.ModuleType) -> None:
        self.put(Tag.MODULE, module.__name__.encode())
        self.put(Tag.VERSION, package_version(module.__name__).encode())

    # -- hooks for the code half ----------------------------------------------------------

    def _code_object(self, v: Any) -> None:
        """Write an action, graph, condition, class, method or partial (see code.CodeEncoder)."""
        raise NotImplementedError

    def _class(self, cls: type) -> None:
        """Write a class by its code (see code.CodeEncoder)."""
        raise NotImplementedError

    _EXACT: ClassVar[dict[type, Any]] = {
        type(None): _none,
        bool: _bool,
        int: _int,
        float: _float,
        complex: _complex,
        str: _str,
        bytes: _bytes,
        bytearray: _bytearray,
        list: _list,
        StateList: _list,
        tuple: _tuple,
        dict: _dict,
        State: _state,
        set: _set,
        frozenset: _set,
        type(...): _ellipsis,
        types.ModuleType: _module_ref,
    }
    _FAMILIES: ClassVar[dict[str, Any]] = {
        "enum": _enum,
        "namedtuple": _namedtuple,
        "dataclass": _dataclass,
        "pydantic": _pydantic,
        "ndarray": _ndarray,
        "numpy_scalar": _numpy_scalar,
        "dataframe": _pandas,
        "series": _pandas,
        "index": _pandas,
        "pandas_scalar": _pickled,
    }


def _ours(t: type) -> bool:
    return t.__module__.partition(".")[0] == "nbflow"
