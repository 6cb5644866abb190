"""The names of executors: ``"threads"``, ``"processes"``, ``"async"``, ``"dask"``, ``"ray"``...

A name maps to a factory; `register_executor` adds your own. Dask and Ray are
imported only when their executor is made, and a missing one is an error naming
its extra. Options for the executor (``max_concurrency``) go to its factory, so
an executor is checked when it is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbflow.errors import UnknownExecutorError
from nbflow.parallel.async_executor import AsyncExecutor
from nbflow.parallel.cluster import DaskExecutor, RayExecutor
from nbflow.parallel.executors import (
    Executor,
    JoblibExecutor,
    MultiProcessExecutor,
    MultiThreadedExecutor,
    SequentialExecutor,
    configured,
)

__all__ = ["register_executor", "resolve_executor", "known_executors"]

# Name -> factory. Dask and Ray themselves are imported only when their executor is made.
_FACTORIES: dict[str, Callable[..., Executor]] = {
    "sequential": SequentialExecutor,
    "threads": MultiThreadedExecutor,
    "processes": MultiProcessExecutor,
    "async": AsyncExecutor,
    "dask": DaskExecutor,
    "ray": RayExecutor,
}


def register_executor(name: str, factory: Callable[..., Executor]) -> None:
    """Make ``name`` usable wherever an executor is accepted.

    Args:
        name: the short name, e.g. ``"gpu-pool"``.
        factory: called with no arguments to make the executor.
    """
    if not isinstance(name, str) or not name:
        msg = f"register_executor() takes a non-empty name; got {name!r}."
        raise TypeError(msg)
    if not callable(factory):
        msg = f"register_executor({name!r}, factory) needs a callable factory that returns an Executor; got {type(factory).__name__}."
        raise TypeError(msg)
    _FACTORIES[name] = factory


def known_executors() -> list[str]:
    """Every executor name `resolve_executor` accepts."""
    return sorted(_FACTORIES)


def resolve_executor(spec: Any, *, for_async: bool = False, **options: Any) -> Executor:
    """The executor for ``spec``: an `Executor`, a registered name, or None for the default.

    The default is threads, unless an enclosing ``joblib.parallel_config`` chose a
    backend (then that backend), and `AsyncExecutor` under ``arun``.

    Args:
        spec: an executor, a name, or None.
        for_async: the default is for ``arun``.
        **options: for a name or the default, passed to the factory (``max_concurrency=4``).

    Raises:
        UnknownExecutorError: ``spec`` is a name nothing registered.
        ValueError: the factory refused an option (``max_concurrency=0``).
    """
    if isinstance(spec, Executor):
        if options:
            msg = f"{spec!r} is made already: pass {sorted(options)} when making it, or give the executor's name instead."
            raise TypeError(msg)
        return spec
    if spec is None:
        if for_async:
            return AsyncExecutor(**options)
        return (
            JoblibExecutor(**options)
            if configured("backend") is not None
            else MultiThreadedExecutor(**options)
        )
    if isinstance(spec, str):
        if spec in _FACTORIES:
            executor = _FACTORIES[spec](**options)
            if not isinstance(executor, Executor):
                msg = f"The factory registered as executor {spec!r} returned {type(executor).__name__}, not an nbflow Executor."
                raise TypeError(msg)
            return executor
        msg = f"No executor {spec!r}. Known: {known_executors()}. Register your own with nbflow.register_executor({spec!r}, factory)."
        raise UnknownExecutorError(msg)
    msg = f"An executor is an nbflow Executor or one of the names {known_executors()}; got {type(spec).__name__}."
    raise TypeError(msg)
