"""Sending tasks to worker processes and their results back.

For executors whose workers are other processes (loky, Dask, Ray) nbflow
pickles each task itself, with cloudpickle, before the executor sees it:

- a task carries only the state keys its graph reads or writes, so a 100 MB
  array elsewhere in the parent's state never leaves the parent;
- the graph is pickled once per step and cached in each worker by digest;
- a task or result that cannot be pickled is caught here, where we still know
  which task, which state key or input, and can say so;
- the worker returns only the keys the task changed, and the parent lays them
  over the task's own state, so ``reduce`` sees the same states on every executor.
"""

from __future__ import annotations

import hashlib
import pickle
from collections import OrderedDict
from typing import Any

from nbflow.core.actions import ApplicationContext
from nbflow.core.state import State
from nbflow.errors import TaskPicklingError
from nbflow.parallel.tasks import Outcome, RunnableGraph, SubGraphTask, run_task

__all__ = ["Packer", "run_shipped"]

_ABSENT = object()
_FIX = "Use executor='threads' (nothing is pickled), or create the object inside the action instead of passing it in."


def _dumps(obj: Any) -> bytes:
    import cloudpickle

    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _culprit(parts: dict[str, Any]) -> tuple[str, Exception] | None:
    for label, value in parts.items():
        try:
            _dumps(value)
        except Exception as exc:
            return label, exc
    return None


class Packer:
    """Pickles the tasks of one parallel step for a process or cluster executor.

    Args:
        action_name: the parallel action's name, for error messages.
        parent: the context the sub-applications run under.
        retries: how often a failed task is retried in the worker.
        backoff_s: the first retry's delay, doubled each time.
    """

    def __init__(self, action_name: str, parent: ApplicationContext | None, retries: int, backoff_s: float):
        self.action_name = action_name
        self.parent = parent
        self.retries = retries
        self.backoff_s = backoff_s
        self._graphs: dict[int, tuple[RunnableGraph, str, bytes]] = {}

    def _graph_blob(self, graph: RunnableGraph) -> tuple[str, bytes]:
        known = self._graphs.get(id(graph))
        if known is not None:
            return known[1], known[2]
        try:
            blob = _dumps(graph)
        except Exception as exc:
            found = _culprit({f"action {name!r}": act for name, act in graph.graph.actions.items()})
            where = found[0] if found else f"sub-graph {graph.name!r}"
            msg = f"Parallel action {self.action_name!r} cannot send {where} to worker processes: {type(exc).__name__}: {exc}. {_FIX}"
            raise TaskPicklingError(msg) from exc
        digest = hashlib.blake2b(blob, digest_size=16).hexdigest()
        self._graphs[id(graph)] = (graph, digest, blob)
        return digest, blob

    def pack(self, task: SubGraphTask) -> tuple[str, bytes, bytes]:
        """The arguments of `run_shipped` for ``task``."""
        digest, graph_blob = self._graph_blob(task.graph)
        shipped = {k: task.state[k] for k in task.graph.keys if k in task.state}
        payload = (
            shipped,
            task.inputs,
            task.application_id,
            task.index,
            self.parent,
            self.retries,
            self.backoff_s,
        )
        try:
            blob = _dumps(payload)
        except Exception as exc:
            parts = {f"state key {k!r}": v for k, v in shipped.items()}
            parts.update({f"input {k!r}": v for k, v in task.inputs.items()})
            found = _culprit(parts)
            what = f"{found[0]} holds a {type(parts[found[0]]).__name__}, which" if found else "it"
            msg = f"Task {task.index} of {self.action_name!r} ({task.describe()}) cannot be sent to a worker process: {what} cannot be pickled ({type(exc).__name__}: {exc}). {_FIX}"
            raise TaskPicklingError(msg) from exc
        return digest, graph_blob, blob


# Worker side: graphs unpickled once per worker, keyed by digest; a few steps' worth.
_GRAPH_CACHE: OrderedDict[str, RunnableGraph] = OrderedDict()
_GRAPH_CACHE_SIZE = 16


def run_shipped(digest: str, graph_blob: bytes, task_blob: bytes) -> bytes:
    """Run a packed task in a worker; return its pickled `Outcome` with only the changed keys."""
    graph = _GRAPH_CACHE.get(digest)
    if graph is None:
        graph = pickle.loads(graph_blob)
        _GRAPH_CACHE[digest] = graph
        while len(_GRAPH_CACHE) > _GRAPH_CACHE_SIZE:
            _GRAPH_CACHE.popitem(last=False)
    shipped, inputs, app_id, index, parent, retries, backoff_s = pickle.loads(task_blob)
    start = State(shipped)
    outcome = run_task(graph, start, inputs, app_id, index, parent, retries, backoff_s)
    if outcome.state is not None:
        final = outcome.state
        changed = {k: v for k, v in final._raw().items() if start.get(k, _ABSENT) is not v}
        outcome.changes = (changed, [k for k in start if k not in final])
        outcome.state = None
    try:
        return _dumps(outcome)
    except Exception as exc:
        return _dumps(_unpicklable_result(outcome, exc))


def _unpicklable_result(outcome: Outcome, exc: Exception) -> Outcome:
    if outcome.error is not None:
        # The task's own exception would not pickle: send its type, message and traceback as text.
        error = outcome.error
        outcome.error = RuntimeError(f"{type(error).__module__}.{type(error).__qualname__}: {error}")
        try:
            return pickle.loads(_dumps(outcome))
        except Exception:
            pass
    found = _culprit({f"state key {k!r}": v for k, v in (outcome.changes or ({}, []))[0].items()})
    what = f"{found[0]} holds a value that" if found else "its result"
    msg = f"Task {outcome.index} finished, but {what} cannot be pickled back to the parent ({type(exc).__name__}: {exc}). Keep such objects out of the state the task writes, or use executor='threads'."
    return Outcome(
        outcome.index, None, outcome.attempts, outcome.duration_s, TaskPicklingError(msg), outcome.traceback
    )
