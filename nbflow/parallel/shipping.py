"""Sending tasks to worker processes and their results back.

For executors whose workers are other processes (loky, Dask, Ray) nbflow
pickles each task itself, with cloudpickle, before the executor sees it:

- a task carries only the state keys its graph reads or writes, so a 100 MB
  array elsewhere in the parent's state never leaves the parent;
- the graph is pickled once per step and cached in each worker by digest;
- with an executor that ``shares_values`` (Dask, Ray), a large value that the
  parent step hands to every task (a dataset in its state, a big graph) goes
  to each worker once through `Executor.share`, and tasks carry a placeholder;
- a task or result that cannot be pickled is caught here, where we still know
  which task, which state key or input, and can say so; a task's exception that
  would not load again in the parent (an ``__init__`` pickle cannot call back)
  travels as a `RemoteTaskError` with its type, message and traceback;
- the types registered with `register_serde` travel with the graph, so a task in
  a worker can persist a notebook-registered type;
- the worker returns only the keys the task changed, and the parent lays them
  over the task's own state, so ``reduce`` sees the same states on every executor.
"""

from __future__ import annotations

import hashlib
import pickle
import secrets
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from nbflow.core.actions import ApplicationContext
from nbflow.core.state import State
from nbflow.errors import RemoteTaskError, StaleCodeError, TaskPicklingError, exception_text
from nbflow.parallel.attempts import NOTHING_MORE, Collect
from nbflow.parallel.tasks import Outcome, RunnableGraph, SubGraphTask, run_task
from nbflow.persistence.code_files import check_not_stale, loaded_versions, match_versions
from nbflow.persistence.serde import install, registrations

__all__ = ["Packer", "run_shipped"]

_ABSENT = object()
# Values at least this big (by sys.getsizeof) are shared rather than sent with every batch:
# below it, sending the value again costs less than the round trip that shares it.
SHARE_MIN_BYTES = 100_000
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


class _Shared:
    """Stands in a task's payload for a value the executor shared; `run_shipped` puts the value back."""

    __slots__ = ("token",)

    def __init__(self, token: int):
        self.token = token

    def __reduce__(self) -> tuple:
        return (_Shared, (self.token,))


class Packer:
    """Pickles the tasks of one parallel step for a process or cluster executor.

    Args:
        action_name: the parallel action's name, for error messages.
        parent: the context the sub-applications run under.
        retries: how often a failed task is retried in the worker.
        backoff_s: the first retry's delay, doubled each time.
        share: the executor's `Executor.share`, or None to send everything with each task.
        common: the values every task may carry (the step's state and inputs); the
            large ones, and a large graph, are shared rather than sent per task.
        timeout: the most seconds a task's attempt may run, or None.
        code_modules: the user modules a graph's code reaches; their file versions travel
            with it, so that workers run the code the notebook runs.
        collect: what each task's attempts collect besides its state (see `Collect`).
    """

    def __init__(
        self,
        action_name: str,
        parent: ApplicationContext | None,
        retries: int,
        backoff_s: float,
        share: Callable[[Any], Any] | None = None,
        common: Iterable[Any] = (),
        timeout: float | None = None,
        code_modules: Callable[[RunnableGraph], Iterable[str]] = lambda graph: (),
        collect: Collect = NOTHING_MORE,
    ):
        self.action_name = action_name
        self.parent = parent
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout = timeout
        self.collect = collect
        self._code_modules = code_modules
        self._graphs: dict[int, tuple[RunnableGraph, str, Any]] = {}
        self._share = share
        self._common = common
        self._large: dict[int, Any] | None = None
        # id(value) -> (token, handle, value): holding the value keeps its id from being reused.
        self._handles: dict[int, tuple[int, Any, Any]] = {}
        self._parent_blob: bytes | None = None
        self._token = secrets.token_hex(8)

    def _graph_blob(self, graph: RunnableGraph) -> tuple[str, bytes]:
        known = self._graphs.get(id(graph))
        if known is not None:
            return known[1], known[2]
        modules = self._code_modules(graph)
        check_not_stale(modules, self.action_name)
        try:
            # The module versions go outside the graph's own pickle: a worker checks them before
            # unpickling the graph, which imports those modules.
            blob = pickle.dumps((loaded_versions(modules), _dumps((graph, registrations()))))
        except Exception as exc:
            found = _culprit({f"action {name!r}": act for name, act in graph.graph.actions.items()})
            where = found[0] if found else f"sub-graph {graph.name!r}"
            msg = f"Parallel action {self.action_name!r} cannot send {where} to worker processes: {type(exc).__name__}: {exc}. {_FIX}"
            raise TaskPicklingError(msg) from exc
        digest = hashlib.blake2b(blob, digest_size=16).hexdigest()
        if self._share is not None and len(blob) >= SHARE_MIN_BYTES:
            # A notebook function can drag big globals into its graph: send them once.
            blob = self._share(blob)
        self._graphs[id(graph)] = (graph, digest, blob)
        return digest, blob

    def _large_common(self) -> dict[int, Any]:
        if self._large is None:
            self._large = {id(v): v for v in self._common if _size(v) >= SHARE_MIN_BYTES}
        return self._large

    def _swap_shared(self, task: SubGraphTask, values: dict, kind: str, shared: dict) -> dict:
        """``values`` with each large common value replaced by a `_Shared` placeholder, noted in ``shared``."""
        large = self._large_common()
        swapped = values
        for key, value in values.items():
            if id(value) not in large:
                continue
            known = self._handles.get(id(value))
            if known is None:
                try:
                    known = (len(self._handles), self._share(value), value)
                except Exception as exc:
                    msg = f"Task {task.index} of {self.action_name!r} ({task.describe()}) cannot share {kind} {key!r} ({type(value).__name__}) with the workers: {type(exc).__name__}: {exc}. {_FIX}"
                    raise TaskPicklingError(msg) from exc
                self._handles[id(value)] = known
            token, handle, _ = known
            shared[token] = handle
            if swapped is values:
                swapped = dict(values)
            swapped[key] = _Shared(token)
        return swapped

    def _context(self, context: ApplicationContext | None) -> tuple[bytes, str | None]:
        """``context`` pickled, and the step's token when it is the one every task shares.

        The shared context is pickled once per step, and a worker unpickles it once per step: it
        is remembered by this step's token, never by its bytes. Two steps' contexts can pickle
        alike (a fresh in-memory persister pickles as the last one did) while a worker's copy of
        the earlier one holds the steps its tasks saved, which must not answer the later step.
        A task with a tracker or persister of its own gets a context of its own.
        """
        shared = context is self.parent
        if shared and self._parent_blob is not None:
            return self._parent_blob, self._token
        try:
            blob = _dumps(context)
        except Exception as exc:
            msg = f"Parallel action {self.action_name!r} cannot send its tasks' context (their persister and tracker) to worker processes: {type(exc).__name__}: {exc}. Use a persister and tracker that can be pickled (nbflow's own can), or executor='threads'."
            raise TaskPicklingError(msg) from exc
        if shared:
            self._parent_blob = blob
            return blob, self._token
        return blob, None

    def pack(self, task: SubGraphTask) -> tuple:
        """The arguments of `run_shipped` for ``task``."""
        digest, graph_blob = self._graph_blob(task.graph)
        shipped = {k: task.state[k] for k in task.graph.keys if k in task.state}
        inputs = task.inputs
        shared: dict[int, Any] = {}
        if self._share is not None:
            shipped = self._swap_shared(task, shipped, "state key", shared)
            inputs = self._swap_shared(task, inputs, "input", shared)
        payload = (
            shipped,
            inputs,
            task.application_id,
            task.index,
            self._context(task.context_for(self.parent)),
            self.retries,
            self.backoff_s,
            self.timeout,
            self.collect,
        )
        try:
            # A point of plain values needs none of cloudpickle's by-value pickling, which costs
            # five times as much. Anything else (a notebook class, say) must go by value.
            blob = (
                pickle.dumps(payload, pickle.HIGHEST_PROTOCOL) if _plain(shipped, inputs) else _dumps(payload)
            )
        except Exception as exc:
            parts = {f"state key {k!r}": v for k, v in shipped.items()}
            parts.update({f"input {k!r}": v for k, v in task.inputs.items()})
            found = _culprit(parts)
            what = f"{found[0]} holds a {type(parts[found[0]]).__name__}, which" if found else "it"
            msg = f"Task {task.index} of {self.action_name!r} ({task.describe()}) cannot be sent to a worker process: {what} cannot be pickled ({type(exc).__name__}: {exc}). {_FIX}"
            raise TaskPicklingError(msg) from exc
        args = (task.index, digest, graph_blob, blob)
        # The handles go last, as a dict argument: where the executor swaps in their values.
        return (*args, shared) if shared else args


# Worker side: graphs unpickled once per worker, keyed by digest; a few steps' worth. The
# context a step's tasks share likewise, keyed by the step's token.
_GRAPH_CACHE: OrderedDict[str, RunnableGraph] = OrderedDict()
_GRAPH_CACHE_SIZE = 16
_CONTEXT_CACHE: dict[str, Any] = {}
_PLAIN = frozenset({int, float, str, bool, bytes, type(None)})


def _plain(*values: dict) -> bool:
    return all(type(v) in _PLAIN for part in values for v in part.values())


def run_shipped(
    index: int, digest: str, graph_blob: bytes, task_blob: bytes, shared: dict[int, Any] | None = None
) -> tuple[int, bytes]:
    """Run a packed task in a worker; return its index and its pickled `Outcome` with only the changed keys."""
    graph = _GRAPH_CACHE.get(digest)
    if graph is None:
        versions, inner = pickle.loads(graph_blob)
        try:
            match_versions(versions)
        except StaleCodeError as exc:
            return index, _dumps(Outcome(index, None, 0, 0.0, exc))
        graph, registrations = pickle.loads(inner)
        # Modules the graph imported just now came from the files as they are: note those versions.
        loaded_versions(versions)
        install(registrations)
        _GRAPH_CACHE[digest] = graph
        while len(_GRAPH_CACHE) > _GRAPH_CACHE_SIZE:
            _GRAPH_CACHE.popitem(last=False)
    shipped, inputs, app_id, index, (context_blob, step_token), retries, backoff_s, timeout, collect = (
        pickle.loads(task_blob)
    )
    parent = _CONTEXT_CACHE.get(step_token) if step_token else None
    if parent is None:
        parent = pickle.loads(context_blob)
        if step_token:
            if len(_CONTEXT_CACHE) >= _GRAPH_CACHE_SIZE:
                _CONTEXT_CACHE.clear()
            _CONTEXT_CACHE[step_token] = parent
    if shared:
        shipped, inputs = _restore(shipped, shared), _restore(inputs, shared)
    start = State(shipped)
    outcome = run_task(
        graph, start, inputs, app_id, index, parent, retries, backoff_s, None, timeout, collect
    )
    if outcome.state is not None:
        final = outcome.state
        changed = {k: v for k, v in final._raw().items() if start.get(k, _ABSENT) is not v}
        outcome.changes = (changed, [k for k in start if k not in final])
        outcome.state = None
    try:
        try:
            # Plain pickle refuses what this worker only has by value (a notebook class, say),
            # and cloudpickle then sends it so.
            blob = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
        except Exception:
            blob = _dumps(outcome)
        if outcome.error is not None:
            # Failures are rare, so check that this one loads again: an exception class whose
            # __init__ pickle cannot call back would otherwise end the step in the parent.
            pickle.loads(blob)
    except Exception as exc:
        blob = _dumps(_unpicklable_result(outcome, exc))
    return index, blob


def _restore(values: dict, shared: dict[int, Any]) -> dict:
    return {k: shared[v.token] if isinstance(v, _Shared) else v for k, v in values.items()}


def _size(value: Any) -> int:
    """Roughly how many bytes ``value`` holds: ``sys.getsizeof``, or ``nbytes`` for array views."""
    try:
        return max(sys.getsizeof(value), int(getattr(value, "nbytes", 0) or 0))
    except Exception:  # a broken __sizeof__ or nbytes must not stop the step; the value goes per task
        return 0


def _unpicklable_result(outcome: Outcome, exc: Exception) -> Outcome:
    if outcome.error is not None:
        # The task's own exception would not travel: send its type, message and traceback as text.
        error = outcome.error
        message = exception_text(error)
        outcome.error = RemoteTaskError(message, type(error).__qualname__, type(error).__module__)
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
