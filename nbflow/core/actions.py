"""Actions: the units of work in a graph, each declaring the state keys it reads and writes.

Two ways to write one:

- a function decorated with `action`, taking the state (and any inputs) and
  returning a new `State`;
- a subclass of `Action` that splits the work into ``run`` (compute a dict of
  results from the state) and ``update`` (write those results into the state).

Either may be ``async``. Parameters after ``state`` are *inputs*: values given
at run time (``app.run(inputs=...)``) or fixed with ``.bind(...)``. A parameter
named ``__context`` receives the `ApplicationContext` instead.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbflow.core.state import State
from nbflow.errors import ActionReturnTypeError, MissingInputError

__all__ = ["Action", "FunctionAction", "FingerprintParts", "action", "ApplicationContext", "declared"]


@dataclass(frozen=True, init=False)
class ApplicationContext:
    """Where an action is running: handed to any action parameter named ``__context``.

    ``executor``, ``persister`` and ``tracker`` are whatever the application was
    built with (the core never looks inside them); parallel actions pass them
    down to the sub-applications they start. ``loader`` is where a resumed
    application loads from, when not ``persister`` itself.

    Apache Burr's names work too, as arguments and as attributes:
    ``state_persister`` (the persister), ``state_initializer`` (the loader) and
    ``parallel_executor_factory``.
    """

    app_id: str
    partition_key: str | None
    sequence_id: int
    action_name: str | None
    parent_app_id: str | None
    parent_sequence_id: int | None
    executor: Any
    persister: Any
    tracker: Any
    loader: Any
    executor_factory: Any
    extras: Mapping[str, Any]

    def __init__(
        self,
        app_id: str,
        partition_key: str | None = None,
        sequence_id: int = 0,
        action_name: str | None = None,
        parent_app_id: str | None = None,
        parent_sequence_id: int | None = None,
        executor: Any = None,
        persister: Any = None,
        tracker: Any = None,
        loader: Any = None,
        executor_factory: Any = None,
        extras: Mapping[str, Any] | None = None,
        *,
        state_persister: Any = None,
        state_initializer: Any = None,
        parallel_executor_factory: Any = None,
    ) -> None:
        values = {
            "app_id": app_id,
            "partition_key": partition_key,
            "sequence_id": sequence_id,
            "action_name": action_name,
            "parent_app_id": parent_app_id,
            "parent_sequence_id": parent_sequence_id,
            "executor": executor,
            "persister": persister if persister is not None else state_persister,
            "tracker": tracker,
            "loader": loader if loader is not None else state_initializer,
            "executor_factory": executor_factory
            if executor_factory is not None
            else parallel_executor_factory,
            "extras": dict(extras or {}),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def state_persister(self) -> Any:
        """The persister (Burr's name for it)."""
        return self.persister

    @property
    def state_initializer(self) -> Any:
        """Where a resumed application loads from: the loader, or else the persister itself."""
        return self.loader if self.loader is not None else self.persister

    @property
    def parallel_executor_factory(self) -> Callable[[], Any]:
        """A factory of ``concurrent.futures`` executors, as Burr's context offers (a thread pool).

        nbflow's parallel actions run on their own executors (``executor=``, ``with_executor``);
        this is for code written against Burr's ``with context.parallel_executor_factory() as pool``.
        """
        if self.executor_factory is not None:
            return self.executor_factory
        import concurrent.futures

        return concurrent.futures.ThreadPoolExecutor


def declared(obj: Any, attribute: str) -> list[str]:
    """``obj.reads`` or ``obj.writes`` as a list, whether an attribute, property or method.

    A method written without ``self`` (``def reads() -> list``, as the Burr reference
    writes it) is called as the plain function it is.
    """
    value = getattr(obj, attribute, ())
    if inspect.ismethod(value) and not _takes_arguments(value.__func__):
        value = value.__func__
    if callable(value):
        value = value()
    if isinstance(value, str):
        return [value]
    return list(value or ())


@functools.lru_cache(maxsize=256)
def _takes_arguments(fn: Callable) -> bool:
    try:
        return bool(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return True


@dataclass(frozen=True)
class _InputSpec:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    takes_any: bool
    context_param: str | None

    @classmethod
    def of(cls, fn: Callable, skip: int) -> _InputSpec:
        params = list(inspect.signature(fn).parameters.values())[skip:]
        required, optional, context_param, takes_any = [], [], None, False
        for p in params:
            if p.kind is p.VAR_KEYWORD:
                takes_any = True
            elif p.kind is p.VAR_POSITIONAL:
                continue
            elif p.name.endswith("__context"):
                # Also matches the mangled `_Cls__context` a method parameter becomes.
                context_param = p.name
            elif p.default is p.empty:
                required.append(p.name)
            else:
                optional.append(p.name)
        return cls(tuple(required), tuple(optional), takes_any, context_param)


@dataclass(frozen=True)
class FingerprintParts:
    """What decides an action's results besides its reads and writes (see `Action.fingerprint_parts`).

    Attributes:
        code: what is digested by what it does: a function (by its code), a
            class (by its code when it is the user's, else by name and package
            version) or a `Graph` (its actions, transitions and conditions).
        data: values digested as data. One that cannot be digested is an
            error: two runs must never pass for the same when they are not.
        loose: values digested as data where possible, else by type alone
            (a client or a lock an action holds beside what it computes with).
    """

    code: Any
    data: Mapping[str, Any] = field(default_factory=dict)
    loose: Mapping[str, Any] = field(default_factory=dict)


class Action:
    """Base class for class-based actions.

    Subclasses set ``reads`` and ``writes`` (class attributes, properties or
    methods) and implement ``run``; ``update`` defaults to writing the declared
    keys found in ``run``'s result.

    Example:
        >>> class Double(Action):
        ...     reads = ["x"]
        ...     writes = ["x"]
        ...     def run(self, state, factor=2):
        ...         return {"x": state["x"] * factor}
        >>> Double().with_name("double").run(State(x=3))
        {'x': 6}
    """

    reads: Sequence[str] = ()
    writes: Sequence[str] = ()

    _name: str | None = None
    _bound: Mapping[str, Any] = {}

    #: How a drawing labels the tasks this action fans out to ("each task", "concurrent");
    #: None for an action that runs no tasks of its own.
    fan_out: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Burr's docs tell users to override `def is_async(self): return False`. nbflow reads
        # `is_async` as a property, so such a method would always be truthy: read it as one.
        override = cls.__dict__.get("is_async")
        if inspect.isfunction(override):
            cls.is_async = property(override, doc=override.__doc__)

    @property
    def name(self) -> str | None:
        """The action's name in its graph (set by the builders or `with_name`)."""
        return self._name

    def run(self, state: State, **inputs: Any) -> dict:
        """Compute results from ``state`` (a view holding the declared keys)."""
        msg = f"{type(self).__name__} must implement run(self, state, **inputs) -> dict."
        raise NotImplementedError(msg)

    def update(self, result: dict, state: State) -> State:
        """Write ``result`` into ``state``; by default, every declared write present in it."""
        return state.update(**{k: result[k] for k in declared(self, "writes") if k in result})

    # -- what the engine asks of every action ---------------------------------------------

    @functools.cached_property
    def is_async(self) -> bool:
        """Whether the action must be awaited (run with ``astep``/``arun``)."""
        return inspect.iscoroutinefunction(self._callable())

    @property
    def single_step(self) -> bool:
        """Whether the action computes and updates state in one call (function actions do)."""
        return False

    def _callable(self) -> Callable:
        # The seam the engine calls through. Function actions return their function here, and
        # parallel actions a runner of their own, so the engine needs no special cases.
        return self.run

    def _acallable(self) -> Callable:
        # What the async API calls; parallel actions swap in a coroutine here.
        return self._callable()

    @functools.cached_property
    def _inputs(self) -> _InputSpec:
        return _InputSpec.of(self._callable(), skip=1)

    @property
    def inputs(self) -> tuple[list[str], list[str]]:
        """``(required, optional)`` input names not already fixed with `bind`."""
        spec = self._inputs
        return (
            [n for n in spec.required if n not in self._bound],
            [n for n in spec.optional if n not in self._bound],
        )

    def resolve_inputs(self, given: Mapping[str, Any] | None, context: Any) -> dict:
        """The keyword arguments to call the action with, from run-time inputs and bound ones.

        Inputs the action does not take are ignored, so one ``inputs=`` dict can
        serve every step of a run.

        Raises:
            MissingInputError: a required input was neither given nor bound.
        """
        spec = self._inputs
        given = given or {}
        kwargs = dict(self._bound)
        if spec.takes_any:
            kwargs.update(given)
        else:
            for name in spec.required + spec.optional:
                if name in given:
                    kwargs[name] = given[name]
        missing = [n for n in spec.required if n not in kwargs]
        if missing:
            example = ", ".join(f"{n!r}: ..." for n in missing)
            msg = f"Action {self.name!r} needs input(s) {missing}, which were not given. Pass them with app.run(inputs={{{example}}}) or fix them with .bind({missing[0]}=...)."
            raise MissingInputError(msg)
        if spec.context_param is not None:
            # Built only for actions that ask for it: most steps never need one.
            kwargs[spec.context_param] = context() if callable(context) else context
        return kwargs

    # -- what the action says about itself -------------------------------------------------

    def fingerprint_parts(self) -> FingerprintParts:
        """What decides this action's results besides its reads and writes: the cache key's code part.

        By default its class, its bound inputs, and its instance attributes (loosely:
        an attribute that cannot be digested counts by its type). Override it when
        the results depend on something else, or on less.
        """
        cls = type(self)
        skip = _NOT_BEHAVIOUR | _cached_properties(cls)
        loose = {k: v for k, v in vars(self).items() if k not in skip}
        return FingerprintParts(code=cls, data={"bound": dict(self._bound)}, loose=loose)

    def children(self) -> list[Any] | None:
        """The sub-graphs (`RunnableGraph`s) this action's tasks run, when known without a state.

        [] for an action that runs none; None when they depend on the state it
        runs on. Drawings show them; nothing is run to find them.
        """
        return []

    def task_count(self) -> int | None:
        """How many tasks this action will run, when known before it runs; else None."""
        return None

    # -- deriving new actions --------------------------------------------------------------

    def _copy(self) -> Action:
        # Not copy.copy: FunctionAction's __reduce__ (which copy.copy would use) is for pickling.
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def with_name(self, name: str) -> Action:
        """A copy of this action under ``name``."""
        if not isinstance(name, str) or not name:
            msg = f"An action name must be a non-empty string; got {name!r}."
            raise TypeError(msg)
        new = self._copy()
        new._name = name
        return new

    def bind(self, **values: Any) -> Action:
        """A copy of this action with some inputs fixed to ``values``."""
        spec = self._inputs
        unknown = [k for k in values if k not in spec.required + spec.optional]
        if unknown and not spec.takes_any:
            msg = f"Action {self.name!r} has no input(s) {unknown} to bind. Its inputs are {list(spec.required + spec.optional)}."
            raise TypeError(msg)
        new = self._copy()
        new._bound = {**self._bound, **values}
        return new

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} reads={declared(self, 'reads')} writes={declared(self, 'writes')}>"


# Instance attributes that are bookkeeping (or covered by the reads and writes), not behaviour.
_NOT_BEHAVIOUR = frozenset({"_name", "reads", "writes", "_bound"})


@functools.lru_cache(maxsize=256)
def _cached_properties(cls: type) -> frozenset[str]:
    # Their values sit in the instance dict only once read; they derive from the rest anyway.
    return frozenset(
        k for c in cls.__mro__ for k, v in vars(c).items() if isinstance(v, functools.cached_property)
    )


class FunctionAction(Action):
    """An action made from a function by the `action` decorator.

    It is still callable like the function it wraps, which keeps unit tests plain.
    """

    def __init__(self, fn: Callable, reads: Sequence[str], writes: Sequence[str]) -> None:
        self.fn = fn
        self.reads = list(reads)
        self.writes = list(writes)
        self._name = fn.__name__
        functools.update_wrapper(self, fn)

    @property
    def single_step(self) -> bool:
        return True

    def _callable(self) -> Callable:
        return self.fn

    def fingerprint_parts(self) -> FingerprintParts:
        return FingerprintParts(code=self.fn, data={"bound": dict(self._bound)})

    def __call__(self, state: State, **inputs: Any) -> Any:
        return self.fn(state, **{**self._bound, **inputs})

    def __reduce__(self):
        # The decorator rebinds the module attribute to this object, so plain pickle cannot find
        # `fn` by name. Pickle a reference to the module-level action instead, when there is one;
        # otherwise pickle by value (cloudpickle then ships notebook-defined functions).
        module = sys.modules.get(self.fn.__module__)
        if module is None or self.fn.__module__ == "__main__":
            # Scripts and notebooks: their functions cannot be imported in a worker by name.
            return (_rebuilt, (type(self), self.__dict__))
        target: Any = module
        for part in self.fn.__qualname__.split("."):
            target = getattr(target, part, None)
        if isinstance(target, FunctionAction) and target.fn is self.fn:
            return (_module_action, (self.fn.__module__, self.fn.__qualname__, self._name, dict(self._bound)))
        return (_rebuilt, (type(self), self.__dict__))


def _module_action(module: str, qualname: str, name: str, bound: dict) -> FunctionAction:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    new = target._copy()
    new._name, new._bound = name, bound
    return new


def _rebuilt(cls: type, attributes: dict) -> Action:
    new = cls.__new__(cls)
    new.__dict__.update(attributes)
    return new


def check_function_result(act: Action, returned: Any) -> tuple[dict | None, State]:
    """A function action's return value as ``(result, state)``.

    A function may return a `State`, or ``(result_dict, State)`` to report a result
    beside the state (as Apache Burr's function actions may).
    """
    if isinstance(returned, State):
        return None, returned
    if (
        isinstance(returned, tuple)
        and len(returned) == 2
        and isinstance(returned[0], Mapping)
        and isinstance(returned[1], State)
    ):
        return dict(returned[0]), returned[1]
    hint = (
        " (it returned a dict: write it with `return state.update(**result)`)"
        if isinstance(returned, Mapping)
        else ""
    )
    msg = f"Action {act.name!r} returned {type(returned).__name__}; an @action function must return a State{hint}, e.g. `return state.update(key=value)`."
    raise ActionReturnTypeError(msg)


def action(reads: Sequence[str], writes: Sequence[str]) -> Callable[[Callable], FunctionAction]:
    """Declare a function as an action that reads and writes the given state keys.

    The function takes the state first, then any inputs, and returns a new state.

    Example:
        >>> @action(reads=["count"], writes=["count"])
        ... def tick(state, by=1):
        ...     return state.update(count=state["count"] + by)
        >>> tick(State(count=1))["count"]
        2
    """
    for label, keys in (("reads", reads), ("writes", writes)):
        if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
            msg = (
                f"@action({label}=...) takes a list of state key names, e.g. {label}=['count']; got {keys!r}."
            )
            raise TypeError(msg)

    def decorate(fn: Callable) -> FunctionAction:
        if not callable(fn):
            msg = f"@action(...) decorates a function; got {type(fn).__name__}."
            raise TypeError(msg)
        return FunctionAction(fn, reads, writes)

    return decorate


def as_action(obj: Any, name: str) -> Action:
    """``obj`` as an `Action` named ``name``, or a clear error if it is not one."""
    if isinstance(obj, Action):
        return obj.with_name(name)
    if callable(obj):
        msg = f"Action {name!r} is a plain {type(obj).__name__}; decorate it with @action(reads=[...], writes=[...]) or subclass nbflow.Action."
        raise TypeError(msg)
    msg = f"Action {name!r} must be an nbflow Action or an @action function; got {type(obj).__name__}."
    raise TypeError(msg)
