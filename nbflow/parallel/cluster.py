"""Executors on a Dask or Ray cluster: the same map, on many machines, by changing one word.

nbflow never runs a cluster of its own: these executors use one you already
have (a ``distributed.Client``, an address, a running Ray) or, when asked,
start a local one for you. Tasks are pickled by nbflow and carry only the state
keys their graph reads and writes; a large value that every task of a step
reads (a dataset in the parent state, a big notebook global in the graph) goes
to each worker once, through `Executor.share` (Dask ``scatter``, ``ray.put``).

Both executors submit batches of tasks through the engine's own futures API
rather than through joblib's ``dask`` and ``ray`` backends, which nbflow's
other executors use. Those backends limit us where it matters at scale:

- joblib's dask backend dispatches the next batch from its completion callback,
  which runs on the Dask client's event loop. Producing tasks (the user's
  ``states()``, nbflow's pickling) would then block that loop, and nbflow could
  not ``scatter`` a large value there: a blocking call on the very loop it waits
  on. Its own scatter sees only a call's top-level, weak-referenceable
  arguments; closing it early forgets its futures without cancelling them; and
  joblib 1.6's ``Parallel(backend="dask")`` forwards ``nesting_level`` to
  ``client.submit``, which breaks every call.
- joblib's ray backend (``ray.util.joblib``) cannot stream: it refuses
  ``return_as="generator_unordered"``, so ``reduce`` would see nothing until the
  last task ended. It also puts every argument in the object store and keeps
  it until the map ends, and starts a new actor pool for every map.

`_ClusterExecutor` holds what both share: a bounded number of batches in flight
(so a 100,000-point sweep never materializes its tasks), batches sized like
`JoblibExecutor`'s, results yielded as they complete, and the rest cancelled
when the consumer stops. A worker that dies takes its tasks with it and the
engine runs them again elsewhere (Dask reschedules them, Ray retries them); a
batch the engine gives up on is split and each of its tasks run alone, so a
task that kills every worker it touches is the only one lost.
"""

from __future__ import annotations

import collections
import importlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nbflow.errors import MissingDependencyError
from nbflow.parallel.executors import Executor, _BatchSizer

__all__ = ["DaskExecutor", "RayExecutor"]


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        msg = f"This executor needs {module!r}, which is not installed. Install it with: pip install 'nbflow[{extra}]'"
        raise MissingDependencyError(msg) from None


def _run_batch(fn: Callable, batch: list[tuple]) -> tuple[list, float]:
    started = time.perf_counter()
    outputs = [fn(*args) for args in batch]
    return outputs, time.perf_counter() - started


class _ClusterExecutor(Executor):
    """Submits batches of calls to a cluster and yields their results as they complete.

    Subclasses connect to their engine and implement the engine's five
    operations: `_slots`, `_submit`, `_first_done`, `_result` and `_cancel`,
    plus `_worker_died` to recognize a batch the engine gave up on.
    """

    ships_tasks = True
    shares_values = True
    # A submit costs a round trip to the scheduler (about a millisecond); batches of ~50 ms
    # hide it and still stream. Slower tasks go one per batch.
    batch_target_s = 0.05

    def __init__(self, max_concurrency: int | None):
        if max_concurrency is not None and (not isinstance(max_concurrency, int) or max_concurrency < 1):
            msg = f"{type(self).__name__}(max_concurrency=...) takes a positive int, or None for two batches per worker thread; got {max_concurrency!r}."
            raise ValueError(msg)
        self.max_concurrency = max_concurrency

    def _connect(self) -> Any:
        """Connect to (or start) the cluster; return the engine's handle."""
        raise NotImplementedError

    def _slots(self) -> int:
        """How many batches to keep in flight when ``max_concurrency`` is None."""
        raise NotImplementedError

    def _submit(self, fn: Callable, batch: list[tuple]) -> Any:
        raise NotImplementedError

    def _first_done(self, futures: list) -> Any:
        raise NotImplementedError

    def _result(self, future: Any) -> tuple[list, float]:
        raise NotImplementedError

    def _cancel(self, futures: list) -> None:
        raise NotImplementedError

    def _worker_died(self, error: BaseException) -> bool:
        raise NotImplementedError

    def map_unordered(
        self, fn: Callable, items: Iterable[tuple], *, lost: Callable | None = None
    ) -> Iterator[Any]:
        self._connect()
        slots = self.max_concurrency or self._slots()
        sizer = _BatchSizer(self.batch_target_s)
        fresh = sizer.batches(items)
        # Calls of a batch whose worker died more often than the engine retries: each runs alone.
        alone: collections.deque[tuple] = collections.deque()
        in_flight: dict[Any, list[tuple]] = {}
        try:
            while True:
                while len(in_flight) < slots:
                    batch = [alone.popleft()] if alone else next(fresh, None)
                    if batch is None:
                        break
                    in_flight[self._submit(fn, batch)] = batch
                if not in_flight:
                    return
                future = self._first_done(list(in_flight))
                batch = in_flight.pop(future)
                try:
                    outputs, elapsed = self._result(future)
                except Exception as exc:
                    if not self._worker_died(exc):
                        raise
                    if len(batch) > 1:
                        alone.extend(batch)
                    elif lost is None:
                        raise
                    else:
                        yield lost(batch[0], exc)
                    continue
                sizer.observe(elapsed, len(outputs))
                yield from outputs
        finally:
            if in_flight:
                self._cancel(list(in_flight))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_concurrency={self.max_concurrency!r})"


class DaskExecutor(_ClusterExecutor):
    """Runs tasks on a Dask cluster.

    With neither ``client`` nor ``address``, it uses the current default client
    (the last ``Client`` you made), or starts a ``LocalCluster`` if ``local=True``.
    Large values that every task reads are scattered to each worker once. Tasks
    on a worker that dies are rescheduled by Dask on the others.

    Args:
        client: a ``distributed.Client`` to use.
        address: a scheduler address to connect to (``"tcp://host:8786"``).
        local: with neither, start a ``LocalCluster`` (owned by this executor and
            closed by `shutdown`) instead of using the current default client.
        max_concurrency: how many batches of tasks are in flight at once; None
            for two per worker thread.
        **cluster_kwargs: passed to ``LocalCluster`` when one is started.

    Example:
        >>> from distributed import Client, LocalCluster            # doctest: +SKIP
        >>> client = Client(LocalCluster(n_workers=2))               # doctest: +SKIP
        >>> sweep(train, grid(lr=[0.01, 0.1]), executor="dask")     # doctest: +SKIP
    """

    name = "dask"

    def __init__(
        self,
        client: Any = None,
        address: str | None = None,
        *,
        local: bool = False,
        max_concurrency: int | None = None,
        **cluster_kwargs: Any,
    ):
        _require("distributed", "dask")
        super().__init__(max_concurrency)
        self.client = client
        self.address = address
        self.local = local
        self.cluster_kwargs = cluster_kwargs
        self._owned: list[Any] = []

    def _connect(self) -> Any:
        distributed = _require("distributed", "dask")
        if self.client is None:
            if self.address is not None:
                self.client = distributed.Client(self.address, set_as_default=False)
                self._owned.append(self.client)
            elif self.local:
                cluster = distributed.LocalCluster(**{"dashboard_address": None, **self.cluster_kwargs})
                self.client = distributed.Client(cluster, set_as_default=False)
                self._owned.extend((self.client, cluster))
            else:
                try:
                    return distributed.get_client()
                except ValueError:
                    msg = "DaskExecutor found no Dask client. Make one first (client = Client(LocalCluster()) or Client('tcp://...')), or pass DaskExecutor(client=...), address='tcp://...', or local=True to start a LocalCluster."
                    raise MissingDependencyError(msg) from None
        return self.client

    def _slots(self) -> int:
        return 2 * max(1, sum(self._connect().nthreads().values()))

    def _submit(self, fn: Callable, batch: list[tuple]) -> Any:
        # pure=False: the same arguments twice are still two runs (a retried point must run again).
        return self._connect().submit(_run_batch, fn, batch, pure=False)

    def _first_done(self, futures: list) -> Any:
        distributed = _require("distributed", "dask")
        return next(iter(distributed.wait(futures, return_when="FIRST_COMPLETED").done))

    def _result(self, future: Any) -> tuple[list, float]:
        return future.result()

    def _cancel(self, futures: list) -> None:
        self._connect().cancel(futures)

    def _worker_died(self, error: BaseException) -> bool:
        return isinstance(error, _require("distributed", "dask").KilledWorker)

    def share(self, value: Any) -> Any:
        # broadcast: a copy on every worker now, so a worker that dies does not take the only one.
        # hash=False: two steps sharing equal values must not release each other's copy.
        return self._connect().scatter(value, broadcast=True, hash=False)

    def shutdown(self) -> None:
        """Close the client and cluster this executor started; a client you passed in stays open."""
        for owned in self._owned:
            owned.close()
        self._owned.clear()
        if self.local or self.address is not None:
            self.client = None


# Ray worker side: shared values fetched once per worker process, by object id; a few steps' worth.
_RESOLVED: collections.OrderedDict[bytes, Any] = collections.OrderedDict()
_RESOLVED_SIZE = 8


def _resolve(value: Any) -> Any:
    import ray

    if not isinstance(value, ray.ObjectRef):
        return value
    key = value.binary()
    if key in _RESOLVED:
        _RESOLVED.move_to_end(key)
    else:
        _RESOLVED[key] = ray.get(value)
        while len(_RESOLVED) > _RESOLVED_SIZE:
            _RESOLVED.popitem(last=False)
    return _RESOLVED[key]


def _run_batch_on_ray(fn: Callable, batch: list[tuple]) -> tuple[list, float]:
    # Ray hands over object refs nested in arguments as refs: fetch the shared values here.
    resolved = [
        tuple({k: _resolve(v) for k, v in a.items()} if isinstance(a, dict) else _resolve(a) for a in args)
        for args in batch
    ]
    return _run_batch(fn, resolved)


class RayExecutor(_ClusterExecutor):
    """Runs tasks on Ray.

    It uses the Ray this process is connected to, or connects to ``address``, or
    starts a local Ray (stopped by `shutdown`). Large values that every task
    reads go into the object store once (``ray.put``) and are read once per
    worker process; numpy arrays among them arrive read-only. Tasks on a worker
    that dies are retried by Ray.

    Args:
        address: a Ray cluster to connect to (``"ray://host:10001"`` or ``"auto"``);
            None uses a running Ray or starts a local one.
        max_concurrency: how many batches of tasks are in flight at once; None
            for two per CPU of the cluster.
        **init_kwargs: passed to ``ray.init`` when this executor starts Ray.

    Example:
        >>> sweep(train, grid(lr=[0.01, 0.1]), executor="ray")      # doctest: +SKIP
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, max_concurrency: int | None = None, **init_kwargs: Any):
        _require("ray", "ray")
        super().__init__(max_concurrency)
        self.address = address
        self.init_kwargs = init_kwargs
        self._started = False
        self._remote: Any = None

    def _connect(self) -> Any:
        ray = _require("ray", "ray")
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_kwargs)
            self._started = True
        if self._remote is None:
            self._remote = ray.remote(_run_batch_on_ray)
        return ray

    def _slots(self) -> int:
        return 2 * max(1, int(self._connect().cluster_resources().get("CPU", 1)))

    def _submit(self, fn: Callable, batch: list[tuple]) -> Any:
        self._connect()
        return self._remote.remote(fn, batch)

    def _first_done(self, futures: list) -> Any:
        return self._connect().wait(futures, num_returns=1)[0][0]

    def _result(self, future: Any) -> tuple[list, float]:
        return self._connect().get(future)

    def _cancel(self, futures: list) -> None:
        ray = self._connect()
        for future in futures:
            ray.cancel(future)

    def _worker_died(self, error: BaseException) -> bool:
        exceptions = _require("ray.exceptions", "ray")
        return isinstance(error, (exceptions.WorkerCrashedError, exceptions.NodeDiedError))

    def share(self, value: Any) -> Any:
        return self._connect().put(value)

    def shutdown(self) -> None:
        """Stop Ray if this executor started it; a Ray you started stays up."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
            self._remote = None
