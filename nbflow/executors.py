"""The executors, importable as ``nbflow.executors`` (they live in `nbflow.parallel`)."""

from nbflow.parallel import (
    AsyncExecutor,
    DaskExecutor,
    Executor,
    JoblibExecutor,
    MultiProcessExecutor,
    MultiThreadedExecutor,
    RayExecutor,
    SequentialExecutor,
    known_executors,
    register_executor,
    resolve_executor,
)

__all__ = [
    "Executor", "SequentialExecutor", "JoblibExecutor", "MultiThreadedExecutor",
    "MultiProcessExecutor", "AsyncExecutor", "DaskExecutor", "RayExecutor",
    "register_executor", "resolve_executor", "known_executors",
]  # fmt: skip
