"""Code fingerprints: a function, class, action or graph digested by what it does.

A cached parallel task is keyed on its code, its inputs and the state values it
reads. `joblib.Memory` keys a function on its source file and line
(joblib/joblib#1498, #1312), and both change every time a notebook cell runs.
`code_fingerprint` keys a function on what it does instead: its bytecode,
constants, names, defaults, closure values, the global values it names, and the
code of the notebook or same-module helpers it calls. Library functions count by
qualified name and package version only. An action says what decides its
results itself (`Action.fingerprint_parts`). `value_fingerprint` digests data,
with the data half of the encoder (`nbflow.fingerprint.values`).

Digests never depend on file paths, line numbers, ``id()`` or string hash
randomization, so the same source gives the same fingerprint in every process
and after a restart. Code digests include the Python version, because bytecode
differs between versions.
"""

from __future__ import annotations
import __future__

import functools
import struct
import sys
import types
from collections.abc import Iterable
from typing import Any, ClassVar

from nbflow.core.actions import Action, declared
from nbflow.core.conditions import Condition
from nbflow.core.graph import Graph
from nbflow.fingerprint.modules import is_user_module, type_name
from nbflow.fingerprint.values import BUILTIN_CALLABLES, CODE_PERSON, VALUE_PERSON, Tag, ValueEncoder

__all__ = ["code_fingerprint", "value_fingerprint", "CodeEncoder"]

# `from __future__ import annotations` in the compiling module (or in the caller of exec) sets a
# flag on every code object it compiles without changing what the code does.
_FUTURE_FLAGS = functools.reduce(
    lambda acc, name: acc | getattr(__future__, name).compiler_flag, __future__.all_feature_names, 0
)
# Class attributes that are bookkeeping, not behaviour (or that hold the same thing twice).
_CLASS_SKIP = frozenset(
    {
        "__dict__", "__weakref__", "__module__", "__qualname__", "__doc__", "__annotations__",
        "__firstlineno__", "__static_attributes__", "__dataclass_fields__", "__dataclass_params__",
        "_abc_impl", "__parameters__", "__orig_bases__",
    }
)  # fmt: skip


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
            (its reads and writes and its `Action.fingerprint_parts`: a
            function action's function and bound inputs, a class-based
            action's class and attributes, a `RunnableGraph`'s graph,
            entrypoint and halt points); a `Graph` (every action by name, the
            transitions with their conditions); or a class.
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
    return code_encoder(obj, tuple(follow)).hexdigest()


def code_encoder(obj: Any, follow: tuple[str, ...] = ()) -> CodeEncoder:
    """The encoder after writing ``obj``: its digest, and the user modules whose code it reached."""
    enc = CodeEncoder(CODE_PERSON, follow)
    enc.put(Tag.VERSION, f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}".encode())
    enc.root(obj)
    return enc


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
    enc = CodeEncoder(VALUE_PERSON, ())
    enc.value(value)
    return enc.hexdigest()


@functools.lru_cache(maxsize=4096)
def _global_names(code: types.CodeType) -> tuple[str, ...]:
    # co_names also holds attribute names; a global that merely shares one is hashed needlessly,
    # which can only cost a cache miss, never a wrong hit.
    names = dict.fromkeys(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.update(dict.fromkeys(_global_names(const)))
        elif isinstance(const, str) and const.isidentifier():
            # getattr(helpers, "scale"): a name reached through a string counts as one read.
            names[const] = None
    return tuple(names)


class CodeEncoder(ValueEncoder):
    """The whole fingerprint encoder: `ValueEncoder`'s data, plus code by what it does."""

    # -- code ----------------------------------------------------------------------------

    def root(self, obj: Any) -> None:
        # What is asked for is hashed by its code even when it comes from a library module.
        if isinstance(obj, types.FunctionType):
            self._function(obj)
        elif isinstance(obj, type):
            self._class(obj)
        elif isinstance(obj, types.MethodType):
            self.put(Tag.METHOD)
            self.root(obj.__func__)
            self._best_effort(obj.__self__)
        elif isinstance(obj, functools.partial):
            self.put(Tag.PARTIAL)
            self.root(obj.func)
            self.value(obj.args)
            self.value(obj.keywords)
        elif isinstance(obj, (Action, Graph, Condition, types.CodeType)) or hasattr(
            type(obj), "__nbflow_fingerprint__"
        ):
            self._code_object(obj)
        else:
            msg = f"code_fingerprint takes a function, an nbflow Action, a RunnableGraph, a Graph or a class; got {type_name(type(obj))}. For data, use value_fingerprint."
            raise TypeError(msg)

    def _code_object(self, v: Any) -> None:
        if hasattr(type(v), "__nbflow_fingerprint__"):
            self._hooked(v)
        elif isinstance(v, Action):
            self._action(v)
        elif isinstance(v, Graph):
            self._graph(v)
        elif isinstance(v, Condition):
            self.put(Tag.CONDITION, v.name.encode())
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
            self.put(Tag.METHOD)
            self.value(v.__func__)
            self._best_effort(v.__self__)
        elif isinstance(v, functools.partial):
            self.put(Tag.PARTIAL)
            self.value(v.func)
            self.value(v.args)
            self.value(v.keywords)
        else:
            self._code(v)

    def _function_value(self, fn: types.FunctionType) -> None:
        if self._is_user(fn.__module__):
            self._function(fn)
        else:
            self._ref(fn)

    def _function(self, fn: types.FunctionType) -> None:
        if not self._enter(fn, dedupe=True):
            return
        self._note_module(fn.__module__)
        outer, self._module = self._module, fn.__module__
        try:
            self.put(Tag.FUNCTION)
            self._code(fn.__code__, fn.__doc__)
            self.value(fn.__defaults__)
            self.value(fn.__kwdefaults__)
            closure = fn.__closure__ or ()
            self._count(Tag.TUPLE, len(closure))
            for name, cell in zip(fn.__code__.co_freevars, closure, strict=True):
                try:
                    contents = cell.cell_contents
                except ValueError:  # a cell not yet assigned, e.g. a function defined before its helper
                    self.put(Tag.EMPTY_CELL)
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

    def _hooked(self, obj: Any) -> None:
        """An object that describes its own code: ``__nbflow_fingerprint__()`` gives code objects and globals."""
        if not self._enter(obj, dedupe=True):
            return
        try:
            parts = obj.__nbflow_fingerprint__()
            codes = [c for c in parts.get("code", ()) if c is not None]
            self.put(Tag.HOOKED, type_name(type(obj)).encode())
            self._count(Tag.TUPLE, len(codes))
            for code in codes:
                self._code(code)
            self.value(parts.get("data"))
            names = dict.fromkeys(n for code in codes for n in _global_names(code))
            self._bindings(tuple(names), parts.get("globals") or {})
        finally:
            self._leave(obj)

    def _globals(self, fn: types.FunctionType) -> None:
        self._bindings(_global_names(fn.__code__), fn.__globals__)

    def _bindings(self, names: tuple[str, ...], namespace: dict) -> None:
        """The values ``names`` have in ``namespace`` (a function's globals): code by code, data by value.

        ``names`` also holds attribute names (``helpers.scale`` reads ``helpers`` and ``scale``),
        which is how the helpers a function reaches through a user module are found.
        """
        bound = [n for n in names if n in namespace]
        self._count(Tag.GLOBALS, len(bound))
        for name in bound:
            self._str(name)
            self._binding(namespace[name], names)

    def _binding(self, v: Any, names: tuple[str, ...]) -> None:
        if isinstance(v, types.ModuleType):
            if self._is_user(v.__name__) and v.__name__ != self._module:
                self._user_module(v, names)
            else:
                self._module_ref(v)
        elif isinstance(v, types.FunctionType):
            self._function_value(v)
        elif isinstance(v, Action):
            self._action(v)
        elif isinstance(v, (type, types.MethodType, functools.partial, *BUILTIN_CALLABLES)):
            self.value(v)
        else:
            # A notebook constant the function reads (SCALE = 3) changes its results; a global
            # that cannot be fingerprinted (a lock, a client) counts by type alone.
            self._best_effort(v)

    def _note_module(self, name: str | None) -> None:
        if name and name != "__main__" and name in sys.modules and is_user_module(name):
            self.user_modules.add(name)

    def _user_module(self, module: types.ModuleType, names: tuple[str, ...]) -> None:
        # A module of the user's own (helpers.py beside the notebook): what the code reads from it,
        # by code, so that editing and reloading helpers.py changes the fingerprint.
        self.put(Tag.MODULE, module.__name__.encode())
        if not self._enter(module, dedupe=False):
            return
        self._note_module(module.__name__)
        try:
            attributes = vars(module)
            self._bindings(tuple(n for n in names if not n.startswith("__")), attributes)
        finally:
            self._leave(module)

    def _code(self, code: types.CodeType, doc: str | None = None) -> None:
        # co_code carries no line numbers (those live in co_linetable), and is the unspecialized
        # bytecode even after the interpreter has specialized the function.
        self.put(Tag.CODE, code.co_code)
        self._str(code.co_name)
        self.put(
            Tag.INT,
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
        self.put(Tag.BYTES, getattr(code, "co_exceptiontable", b""))
        consts = code.co_consts
        self._count(Tag.TUPLE, len(consts))
        for i, const in enumerate(consts):
            if i == 0 and doc is not None and const == doc:
                # A function's docstring is its first constant; editing it changes no result.
                self.put(Tag.DOCSTRING)
            else:
                self.value(const)

    def _class(self, cls: type) -> None:
        if not self._enter(cls, dedupe=True):
            return
        self._note_module(cls.__module__)
        outer, self._module = self._module, cls.__module__
        try:
            self.put(Tag.CLASS, cls.__qualname__.encode())
            self._count(Tag.TUPLE, len(cls.__bases__))
            for base in cls.__bases__:
                self.value(base)
            members = sorted((k, v) for k, v in vars(cls).items() if k not in _CLASS_SKIP)
            self._count(Tag.DICT, len(members))
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
            parts = act.fingerprint_parts()
            self.put(Tag.ACTION)
            self.value(sorted(declared(act, "reads")))
            self.value(sorted(declared(act, "writes")))
            code = parts.code
            if isinstance(code, types.FunctionType):
                self._function(code)  # by its code even in a library: it is what the action runs
            elif isinstance(code, Graph):
                self._graph(code)
            else:
                self.value(code)  # a class: by its code when the user's, else by name and version
            self._mapping(list(parts.data.items()))
            loose = sorted(parts.loose.items())
            self._count(Tag.DICT, len(loose))
            for name, value in loose:
                self._str(name)
                self._best_effort(value)
        finally:
            self._leave(act)

    def _graph(self, graph: Graph) -> None:
        self._count(Tag.GRAPH, len(graph.actions))
        for name in sorted(graph.actions):
            self._str(name)
            self._action(graph.actions[name])
        # Transition order is priority order, so it counts.
        self._count(Tag.TUPLE, len(graph.transitions))
        for t in graph.transitions:
            self._str(t.source)
            self._str(t.target)
            self._code_object(t.condition)

    _EXACT: ClassVar[dict[type, Any]] = {
        **ValueEncoder._EXACT,
        types.FunctionType: _function_value,
        types.CodeType: _code,
    }
