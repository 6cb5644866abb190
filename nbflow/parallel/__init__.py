"""Parallelism: map actions, sub-graphs, concurrent branches, and the executors they run on.

Depends on the core; the core never imports it. joblib, cloudpickle, Dask and
Ray are imported only when an executor that needs them is made or runs.
"""

from nbflow.parallel.async_executor import AsyncExecutor
from nbflow.parallel.cluster import DaskExecutor, RayExecutor
from nbflow.parallel.concurrent import RunConcurrent, concat, last, sum_changes
from nbflow.parallel.executors import (
    Executor,
    JoblibExecutor,
    MultiProcessExecutor,
    MultiThreadedExecutor,
    SequentialExecutor,
)
from nbflow.parallel.interleaving import StepEvent, ainterleave, interleave
from nbflow.parallel.map import (
    MapActions,
    MapActionsAndStates,
    MapStates,
    TaskBasedParallelAction,
    map_reduce_action,
)
from nbflow.parallel.registry import known_executors, register_executor, resolve_executor
from nbflow.parallel.tasks import RunnableGraph, SubGraphTask, TaskInfo, TaskState

__all__ = [
    "TaskBasedParallelAction", "MapActionsAndStates", "MapStates", "MapActions", "map_reduce_action",
    "SubGraphTask", "RunnableGraph", "TaskInfo", "TaskState",
    "RunConcurrent", "sum_changes", "concat", "last",
    "StepEvent", "interleave", "ainterleave",
    "Executor", "SequentialExecutor", "JoblibExecutor", "MultiThreadedExecutor",
    "MultiProcessExecutor", "AsyncExecutor", "DaskExecutor", "RayExecutor",
    "register_executor", "resolve_executor", "known_executors",
]  # fmt: skip
