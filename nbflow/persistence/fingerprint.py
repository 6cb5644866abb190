"""Fingerprints: stable digests of code and data, the keys of cached task results.

A cached parallel task is keyed on its code, its inputs and the state values it
reads. `joblib.Memory` keys a function on its source file and line
(joblib/joblib#1498, #1312), and both change every time a notebook cell runs.
`code_fingerprint` keys a function on what it does instead: its bytecode,
constants, names, defaults, closure values, the global values it names, and the
code of the notebook or same-module helpers it calls. Library functions count by
qualified name and package version only. `value_fingerprint` digests data.

Digests never depend on file paths, line numbers, ``id()`` or string hash
randomization, so the same source gives the same fingerprint in every process
and after a restart. Code digests include the Python version, because bytecode
differs between versions.

Every piece is fed to the hash as a tagged, length-prefixed chunk (containers
as a tagged count followed by their items), so the encoding is prefix-free and
two different structures cannot produce the same byte stream.
"""

from __future__ import annotations
import __future__

import copyreg
import dataclasses
import functools
import hashlib
import pickle
import struct
import sys
import types
from collections.abc import Iterable
from typing import Any

from nbflow.core.actions import Action, FunctionAction, declared
from nbflow.core.conditions import Condition
from nbflow.core.graph import Graph
from nbflow.core.state import State, StateList

__all__ = ["code_fingerprint", "value_fingerprint"]

# blake2b's personalization keeps code and value digests in separate spaces.
_CODE_PERSON = b"nbflow.code.1"
_VALUE_PERSON = b"nbflow.value.1"

# One byte per kind of chunk. The format is versioned through the persons above.
_NONE, _TRUE, _FALSE, _ELLIPSIS = b"N", b"T", b"F", b"E"
_INT, _FLOAT, _COMPLEX, _STR, _BYTES, _BYTEARRAY = b"i", b"f", b"c", b"s", b"b", b"B"
_LIST, _TUPLE, _DICT, _SET, _SUBCLASS = b"l", b"t", b"d", b"S", b"y"
_DIGEST, _CYCLE, _BACKREF, _OPAQUE = b"h", b"@", b"^", b"o"
_NDARRAY, _NPSCALAR, _PANDAS, _DATACLASS, _PYDANTIC = b"a", b"A", b"p", b"D", b"P"
_PICKLE, _OBJECT, _WRAPPER = b"k", b"O", b"W"
_VERSION, _CODE, _FUNCTION, _DOCSTRING, _EMPTY_CELL, _GLOBALS = b"v", b"X", b"x", b"_", b"e", b"g"
_REF, _MODULE, _CLASS, _METHOD, _PARTIAL = b"r", b"m", b"C", b"M", b"("
_ACTION, _GRAPH, _RUNNABLE, _CONDITION = b"Q", b"G", b"R", b"?"

# `from __future__ import annotations` in the compiling module (or in the caller of exec) sets a
# flag on every code object it compiles without changing what the code does.
_FUTURE_FLAGS = functools.reduce(
    lambda acc, name: acc | getattr(__future__, name).compiler_flag, __future__.all_feature_names, 0
)
_BUILTIN_CALLABLES = (
    types.BuiltinFunctionType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
)
# Class attributes that are bookkeeping, not behaviour (or that hold the same thing twice).
_CLASS_SKIP = frozenset(
    {
        "__dict__", "__weakref__", "__module__", "__qualname__", "__doc__", "__annotations__",
        "__firstlineno__", "__static_attributes__", "__dataclass_fields__", "__dataclass_params__",
        "_abc_impl", "__parameters__", "__orig_bases__",
    }
)  # fmt: skip
# Action attributes the fingerprint covers elsewhere (reads/writes) or that do not change results.
_ACTION_SKIP = frozenset({"_name", "reads", "writes"})


def code_fingerprint(obj: Any, *, follow: Iterable[str] = ()) -> str:
    """A hex digest of what ``obj`` computes, stable across processes and restarts.

    Covers a function's bytecode, constants (nested lambdas and comprehensions
    included), names, argument defaults, closure values, the global values it
    names, and the code of every function, class or action it calls that is
    defined in its own module, in ``__main__`` (a notebook or script) or in a
    module that cannot be imported. Functions from importable libraries count
    by qualified name and package ``__version__`` only. Docstrings, comments,
    file paths and line numbers do not count.

    Args:
        obj: a function, method or ``functools.partial``; an nbflow `Action`
            (a `FunctionAction` adds its bound inputs and reads/writes; a
            class-based action its class's code and its data attributes); a
            `RunnableGraph` or `Graph` (every action by name, the transitions
            with their conditions, the entrypoint and halt points); or a class.
        follow: module names (or package prefixes) whose functions are hashed
            by code, not by name: e.g. ``["mylib"]`` for a helper module you
            edit next to the notebook.

    Returns:
        A 32-character hex digest.

    Raises:
        TypeError: ``obj`` is none of the above, or a closure or default value
            can be neither fingerprinted as data nor pickled.

    Example:
        >>> def scale(x, factor=2):
        ...     return x * factor
        >>> fp = code_fingerprint(scale)
        >>> def scale(x, factor=3):
        ...     return x * factor
        >>> code_fingerprint(scale) != fp
        True
    """
    enc = _Encoder(_CODE_PERSON, tuple(follow))
    enc.put(_VERSION, f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}".encode())
    enc.root(obj)
    return enc.hexdigest()


def value_fingerprint(value: Any) -> str:
    """A hex digest of a data value, stable across processes and restarts.

    Lists and tuples are order-sensitive; dicts (and `State`) and sets are not.
    ``1``, ``1.0`` and ``True`` differ. numpy arrays count by dtype, shape and
    bytes; pandas objects by `pandas.util.hash_pandas_object` (object columns
    cell by cell) plus their labels and dtypes; dataclasses and pydantic models
    by type and fields; functions and actions by `code_fingerprint` rules.
    Instances of plain classes count by their class (its code, when defined in
    a notebook) and attribute values; anything else by its pickle.

    Args:
        value: the value to digest.

    Returns:
        A 32-character hex digest.

    Raises:
        TypeError: the value is not plain data and cannot be pickled.

    Example:
        >>> value_fingerprint({"a": 1, "b": [2, 3]}) == value_fingerprint({"b": [2, 3], "a": 1})
        True
    """
    enc = _Encoder(_VALUE_PERSON, ())
    enc.value(value)
    return enc.hexdigest()


def _type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _version(module: str) -> str:
    for name in (module, module.partition(".")[0]):
        found = getattr(sys.modules.get(name), "__version__", None)
        if found is not None:
            return str(found)
    return ""


@functools.lru_cache(maxsize=4096)
def _global_names(code: types.CodeType) -> tuple[str, ...]:
    # co_names also holds attribute names; a global that merely shares one is hashed needlessly,
    # which can only cost a cache miss, never a wrong hit.
    names = dict.fromkeys(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.update(dict.fromkeys(_global_names(const)))
    return tuple(names)


class _Encoder:
    """Feeds one object graph to a blake2b hash as tagged, length-prefixed chunks."""

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

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    # -- chunks --------------------------------------------------------------------------

    def put(self, tag: bytes, payload: bytes = b"") -> None:
        self._update(tag + len(payload).to_bytes(8, "little") + payload)

    def _count(self, tag: bytes, n: int) -> None:
        self._update(tag + n.to_bytes(8, "little"))

    def _str(self, s: str) -> None:
        self.put(_STR, s.encode("utf-8", "surrogatepass"))

    def _sub(self, *, keep_seen: bool) -> _Encoder:
        sub = _Encoder(self._person, self._follow)
        sub._active = dict(self._active)
        # A digest that is sorted among siblings (dict keys, set items) must not depend on which
        # sibling was hashed first, so it starts with nothing seen.
        sub._seen = dict(self._seen) if keep_seen else {}
        sub._module = self._module
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
            self.put(_CYCLE, depth.to_bytes(4, "little"))
            return False
        if dedupe:
            ordinal = self._seen.get(key)
            if ordinal is not None:
                self.put(_BACKREF, ordinal.to_bytes(4, "little"))
                return False
            self._seen[key] = len(self._seen)
        self._active[key] = len(self._active)
        return True

    def _leave(self, obj: Any) -> None:
        del self._active[id(obj)]

    def _is_user(self, module: str | None) -> bool:
        """Whether code from ``module`` is hashed by its code rather than by name and version."""
        if module is None or module == "__main__" or module == self._module or module not in sys.modules:
            return True
        return any(module == p or module.startswith(f"{p}.") for p in self._follow)

    # -- data ----------------------------------------------------------------------------

    def value(self, v: Any) -> None:
        encode = _EXACT.get(type(v))
        if encode is not None:
            encode(self, v)
        else:
            self._other(v)

    def _none(self, v: None) -> None:
        self.put(_NONE)

    def _bool(self, v: bool) -> None:
        self.put(_TRUE if v else _FALSE)

    def _ellipsis(self, v: Any) -> None:
        self.put(_ELLIPSIS)

    def _int(self, v: int) -> None:
        self.put(_INT, int.to_bytes(v, (v.bit_length() + 8) // 8, "little", signed=True))

    def _float(self, v: float) -> None:
        self.put(_FLOAT, struct.pack("<d", v))

    def _complex(self, v: complex) -> None:
        self.put(_COMPLEX, struct.pack("<dd", v.real, v.imag))

    def _bytes(self, v: bytes) -> None:
        self.put(_BYTES, v)

    def _bytearray(self, v: bytearray) -> None:
        self.put(_BYTEARRAY, bytes(v))

    def _list(self, v: Any) -> None:
        if self._enter(v, dedupe=False):
            self._count(_LIST, len(v))
            for item in v:
                self.value(item)
            self._leave(v)

    def _tuple(self, v: tuple) -> None:
        # A tuple can only reach itself through a list, dict or object, which catch the cycle.
        self._count(_TUPLE, len(v))
        for item in v:
            self.value(item)

    def _dict(self, v: Any) -> None:
        if self._enter(v, dedupe=False):
            self._mapping(list(v.items()))
            self._leave(v)

    def _mapping(self, items: list[tuple[Any, Any]]) -> None:
        self._count(_DICT, len(items))
        if all(type(k) is str for k, _ in items):
            # Strings sort the same in every process, so the common case needs no key digests.
            for k, item in sorted(items, key=lambda kv: kv[0]):
                self._str(k)
                self.value(item)
        else:
            for digest, item in sorted(((self._digest_of(k), item) for k, item in items), key=lambda d: d[0]):
                self.put(_DIGEST, digest)
                self.value(item)

    def _set(self, v: Any) -> None:
        self._count(_SET, len(v))
        for digest in sorted(self._digest_of(item) for item in v):
            self.put(_DIGEST, digest)

    def _state(self, v: State) -> None:
        # A State equals the dict of its items, and fingerprints like it.
        self._mapping(list(v.items()))

    def _other(self, v: Any) -> None:
        t = type(v)
        if isinstance(v, (Action, Graph, Condition, type, types.MethodType, functools.partial)):
            self._code_object(v)
        elif isinstance(v, State):
            self._state(v)
        elif callable(v) and isinstance(getattr(v, "__wrapped__", None), types.FunctionType):
            # functools.lru_cache and other wrappers: what they wrap decides the results.
            self.put(_WRAPPER, _type_name(t).encode())
            self.value(v.__wrapped__)
        elif isinstance(v, _BUILTIN_CALLABLES) or (
            callable(v) and hasattr(v, "__name__") and not self._is_user(t.__module__)
        ):
            # Builtins and function-like library objects (numpy ufuncs): by name and version.
            self._ref(v)
        elif isinstance(v, (list, tuple, dict, set, frozenset, str, int, float, bytes)):
            # Named tuples, IntEnums, OrderedDicts...: the type's name, then the builtin value.
            self.put(_SUBCLASS, _type_name(t).encode())
            base = next(b for b in t.__mro__ if b in _EXACT)
            _EXACT[base](self, v)
        else:
            top = t.__module__.partition(".")[0]
            if top == "numpy" and self._numpy(v):
                return
            if top == "pandas" and self._pandas(v):
                return
            if dataclasses.is_dataclass(v):
                self._fields(_DATACLASS, v, [f.name for f in dataclasses.fields(v)])
            elif _is_pydantic(t):
                fields = getattr(t, "model_fields", None) or getattr(t, "__fields__", {})
                self._fields(_PYDANTIC, v, list(fields))
            else:
                self._pickled(v)

    def _fields(self, tag: bytes, v: Any, names: list[str]) -> None:
        if self._enter(v, dedupe=False):
            self.put(tag, _type_name(type(v)).encode())
            self._count(_DICT, len(names))
            for name in names:
                self._str(name)
                self.value(getattr(v, name))
            self._leave(v)

    def _numpy(self, v: Any) -> bool:
        np = sys.modules["numpy"]
        if isinstance(v, np.ndarray):
            tag = _NDARRAY
        elif isinstance(v, np.generic):
            tag, v = _NPSCALAR, np.asarray(v)
        else:
            return False
        dtype = v.dtype
        self.put(tag, dtype.str.encode())
        self.value(dtype.descr if dtype.names else None)
        self.value(v.shape)
        if dtype.hasobject:
            # The buffer of an object array holds pointers; hash the objects it points to.
            self.value(v.ravel().tolist())
        else:
            flat = np.ascontiguousarray(v).reshape(-1).view(np.uint8)
            self._count(_BYTES, flat.nbytes)
            self._update(flat)
        return True

    def _pandas(self, v: Any) -> bool:
        pd = sys.modules["pandas"]
        if not isinstance(v, (pd.DataFrame, pd.Series, pd.Index)):
            return False
        self.put(_PANDAS, _type_name(type(v)).encode())
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
        return True

    def _pandas_values(self, values: Any) -> None:
        if values.dtype == object:
            # hash_pandas_object hashes str(cell) here, so 1 and "1" (or two objects whose repr
            # shows only an address) would collide; object columns are hashed cell by cell.
            self.value(values.tolist())
        else:
            pd = sys.modules["pandas"]
            self._numpy(pd.util.hash_pandas_object(values, index=False).to_numpy())

    def _pickled(self, v: Any) -> None:
        t = type(v)
        plain = (
            t.__reduce_ex__ is object.__reduce_ex__
            and t.__reduce__ is object.__reduce__
            and t not in copyreg.dispatch_table
        )
        try:
            reduced = v.__reduce_ex__(5) if plain else pickle.dumps(v, protocol=5)
        except Exception as exc:
            msg = f"Cannot fingerprint a {_type_name(t)} value: it is not plain data and pickle fails ({type(exc).__name__}: {exc}). Build the object inside the action from plain inputs (a path, a seed, parameters) instead of passing it in."
            raise TypeError(msg) from exc
        if not plain:
            if self._is_user(t.__module__):
                # Pickle names a notebook class without its code; hash the code too.
                self._class(t)
            self.put(_PICKLE, reduced)
        elif self._enter(v, dedupe=False):
            # What pickle would save for a plain instance (its class, then its attribute dict),
            # hashed item by item: pickle bytes would follow the hash-seeded order of a set
            # attribute, and its memo would tell a shared object from an equal copy.
            _, args, state, items, pairs = (*reduced, None, None, None)[:5]
            self.put(_OBJECT)
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
            self.put(_OPAQUE, _type_name(type(v)).encode())
            return
        self._seen = sub._seen
        self.put(_DIGEST, sub._hash.digest())

    # -- code ----------------------------------------------------------------------------

    def root(self, obj: Any) -> None:
        # What is asked for is hashed by its code even when it comes from a library module.
        if isinstance(obj, types.FunctionType):
            self._function(obj)
        elif isinstance(obj, type):
            self._class(obj)
        elif isinstance(obj, types.MethodType):
            self.put(_METHOD)
            self.root(obj.__func__)
            self._best_effort(obj.__self__)
        elif isinstance(obj, functools.partial):
            self.put(_PARTIAL)
            self.root(obj.func)
            self.value(obj.args)
            self.value(obj.keywords)
        elif isinstance(obj, (Action, Graph, Condition, types.CodeType)):
            self._code_object(obj)
        else:
            msg = f"code_fingerprint takes a function, an nbflow Action, a RunnableGraph, a Graph or a class; got {_type_name(type(obj))}. For data, use value_fingerprint."
            raise TypeError(msg)

    def _code_object(self, v: Any) -> None:
        if isinstance(v, Action):
            self._action(v)
        elif isinstance(v, Graph):
            self._graph(v)
        elif isinstance(v, Condition):
            self.put(_CONDITION, v.name.encode())
            self.value(v.keys)
            # The predicate is always hashed by code: `when`/`expr` keep their values in its closure.
            if isinstance(v._predicate, types.FunctionType):
                self._function(v._predicate)
            else:
                self.value(v._predicate)
        elif isinstance(v, type):
            if self._is_user(v.__module__):
                self._class(v)
            else:
                self._ref(v)
        elif isinstance(v, types.MethodType):
            self.put(_METHOD)
            self.value(v.__func__)
            self._best_effort(v.__self__)
        elif isinstance(v, functools.partial):
            self.put(_PARTIAL)
            self.value(v.func)
            self.value(v.args)
            self.value(v.keywords)
        else:
            self._code(v)

    def _ref(self, obj: Any) -> None:
        module = getattr(obj, "__module__", None) or type(obj).__module__
        name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__qualname__
        self.put(_REF, f"{module}:{name}".encode())
        self.put(_VERSION, _version(module).encode())

    def _module_ref(self, module: types.ModuleType) -> None:
        self.put(_MODULE, module.__name__.encode())
        self.put(_VERSION, _version(module.__name__).encode())

    def _function_value(self, fn: types.FunctionType) -> None:
        if self._is_user(fn.__module__):
            self._function(fn)
        else:
            self._ref(fn)

    def _function(self, fn: types.FunctionType) -> None:
        if not self._enter(fn, dedupe=True):
            return
        outer, self._module = self._module, fn.__module__
        try:
            self.put(_FUNCTION)
            self._code(fn.__code__, fn.__doc__)
            self.value(fn.__defaults__)
            self.value(fn.__kwdefaults__)
            closure = fn.__closure__ or ()
            self._count(_TUPLE, len(closure))
            for name, cell in zip(fn.__code__.co_freevars, closure, strict=True):
                try:
                    contents = cell.cell_contents
                except ValueError:  # a cell not yet assigned, e.g. a function defined before its helper
                    self.put(_EMPTY_CELL)
                    continue
                try:
                    self.value(contents)
                except TypeError as exc:
                    msg = f"{exc} (It is closure variable {name!r} of {fn.__qualname__!r}.)"
                    raise TypeError(msg) from exc
            self._globals(fn)
        finally:
            self._module = outer
            self._leave(fn)

    def _globals(self, fn: types.FunctionType) -> None:
        namespace = fn.__globals__
        names = [n for n in _global_names(fn.__code__) if n in namespace]
        self._count(_GLOBALS, len(names))
        for name in names:
            self._str(name)
            v = namespace[name]
            if isinstance(v, types.ModuleType):
                self._module_ref(v)
            elif isinstance(v, types.FunctionType):
                self._function_value(v)
            elif isinstance(v, Action):
                module = v.fn.__module__ if isinstance(v, FunctionAction) else type(v).__module__
                if self._is_user(module):
                    self._action(v)
                else:
                    self._ref(v.fn if isinstance(v, FunctionAction) else type(v))
            elif isinstance(v, (type, types.MethodType, functools.partial, *_BUILTIN_CALLABLES)):
                self.value(v)
            else:
                # A notebook constant the function reads (SCALE = 3) changes its results; a global
                # that cannot be fingerprinted (a lock, a client) counts by type alone.
                self._best_effort(v)

    def _code(self, code: types.CodeType, doc: str | None = None) -> None:
        # co_code carries no line numbers (those live in co_linetable), and is the unspecialized
        # bytecode even after the interpreter has specialized the function.
        self.put(_CODE, code.co_code)
        self._str(code.co_name)
        self.put(
            _INT,
            struct.pack(
                "<4q",
                code.co_argcount,
                code.co_posonlyargcount,
                code.co_kwonlyargcount,
                code.co_flags & ~_FUTURE_FLAGS,
            ),
        )
        self.value(code.co_names)
        self.value(code.co_varnames)
        self.value(code.co_freevars)
        self.value(code.co_cellvars)
        self.put(_BYTES, getattr(code, "co_exceptiontable", b""))
        consts = code.co_consts
        self._count(_TUPLE, len(consts))
        for i, const in enumerate(consts):
            if i == 0 and doc is not None and const == doc:
                # A function's docstring is its first constant; editing it changes no result.
                self.put(_DOCSTRING)
            else:
                self.value(const)

    def _class(self, cls: type) -> None:
        if not self._enter(cls, dedupe=True):
            return
        outer, self._module = self._module, cls.__module__
        try:
            self.put(_CLASS, cls.__qualname__.encode())
            self._count(_TUPLE, len(cls.__bases__))
            for base in cls.__bases__:
                self.value(base)
            members = sorted((k, v) for k, v in vars(cls).items() if k not in _CLASS_SKIP)
            self._count(_DICT, len(members))
            for name, member in members:
                self._str(name)
                if isinstance(member, (staticmethod, classmethod)):
                    self.value(member.__func__)
                elif isinstance(member, property):
                    self.value((member.fget, member.fset, member.fdel))
                elif isinstance(member, functools.cached_property):
                    self.value(member.func)
                elif isinstance(member, (types.FunctionType, type)):
                    self.value(member)
                else:
                    self._best_effort(member)
        finally:
            self._module = outer
            self._leave(cls)

    def _action(self, act: Action) -> None:
        if not self._enter(act, dedupe=True):
            return
        try:
            graph = vars(act).get("graph")
            if isinstance(graph, Graph) and hasattr(act, "entrypoint") and hasattr(act, "halt_after"):
                # A RunnableGraph, recognized by shape: persistence does not import the parallel layer.
                self.put(_RUNNABLE)
                self._graph(graph)
                self._str(act.entrypoint)
                self.value(sorted(act.halt_after))
                return
            self.value(sorted(declared(act, "reads")))
            self.value(sorted(declared(act, "writes")))
            if isinstance(act, FunctionAction):
                self.put(_ACTION, b"function")
                self._function(act.fn)
                self.value(dict(act._bound))
                return
            cls = type(act)
            self.put(_ACTION, b"class")
            if self._is_user(cls.__module__):
                self._class(cls)
            else:
                self._ref(cls)
            skip = _ACTION_SKIP | _cached_properties(cls)
            attributes = sorted((k, v) for k, v in vars(act).items() if k not in skip)
            self._count(_DICT, len(attributes))
            for name, attribute in attributes:
                self._str(name)
                if name == "_bound":
                    self.value(dict(attribute))
                else:
                    self._best_effort(attribute)
        finally:
            self._leave(act)

    def _graph(self, graph: Graph) -> None:
        self._count(_GRAPH, len(graph.actions))
        for name in sorted(graph.actions):
            self._str(name)
            self._action(graph.actions[name])
        # Transition order is priority order, so it counts.
        self._count(_TUPLE, len(graph.transitions))
        for t in graph.transitions:
            self._str(t.source)
            self._str(t.target)
            self._code_object(t.condition)


@functools.lru_cache(maxsize=256)
def _cached_properties(cls: type) -> frozenset[str]:
    # Their values sit in the instance dict only once read; they derive from the rest anyway.
    return frozenset(
        k for c in cls.__mro__ for k, v in vars(c).items() if isinstance(v, functools.cached_property)
    )


def _is_pydantic(t: type) -> bool:
    return any(c.__name__ == "BaseModel" and c.__module__.startswith("pydantic") for c in t.__mro__)


_EXACT: dict[type, Any] = {
    type(None): _Encoder._none,
    bool: _Encoder._bool,
    int: _Encoder._int,
    float: _Encoder._float,
    complex: _Encoder._complex,
    str: _Encoder._str,
    bytes: _Encoder._bytes,
    bytearray: _Encoder._bytearray,
    list: _Encoder._list,
    StateList: _Encoder._list,
    tuple: _Encoder._tuple,
    dict: _Encoder._dict,
    State: _Encoder._state,
    set: _Encoder._set,
    frozenset: _Encoder._set,
    type(...): _Encoder._ellipsis,
    types.FunctionType: _Encoder._function_value,
    types.CodeType: _Encoder._code,
    types.ModuleType: _Encoder._module_ref,
}
