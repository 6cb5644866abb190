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
batch the engine gives up on is split and each of its tasks runs once more
alone, so a task that kills every worker it touches is the only one lost (it
reaches ``reduce`` as a failure when the map passes ``lost``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import importlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nbflow.errors import MissingDependencyError
from nbflow.parallel.channel import run_batch_flushing
from nbflow.parallel.executors import Executor, _BatchSizer

__all__ = ["DaskExecutor", "RayExecutor"]


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        msg = f"This executor needs {module!r}, which is not installed. Install it with: pip install 'nbflow[{extra}]'"
        raise MissingDependencyError(msg) from None


def _resolved(batch: list[tuple], resolve: Callable[[Any], Any]) -> list[tuple]:
    """``batch`` with ``resolve`` applied to each argument, and to each value of a dict argument."""
    return [
        tuple({k: resolve(v) for k, v in a.items()} if isinstance(a, dict) else resolve(a) for a in args)
        for args in batch
    ]


class _ClusterExecutor(Executor):
    """Submits batches of calls to a cluster and yields their results as they complete.

    Subclasses connect to their engine and implement its operations:
    `_slots`, `_submit`, `_completions`, `_result` and `_cancel`, plus
    `_worker_died` to recognize a batch the engine gave up on.
    """

    ships_tasks = True
    shares_values = True
    flushes_early = True
    # A submit costs a round trip to the scheduler (about a millisecond); batches of ~50 ms
    # hide it and still stream. Slower tasks go one per batch.
    batch_target_s = 0.05

    def __init__(self, max_concurrency: int | None):
        if max_concurrency is not None and (not isinstance(max_concurrency, int) or max_concurrency < 1):
            msg = f"{type(self).__name__}(max_concurrency=...) takes a positive int, or None for two batches per worker thread; got {max_concurrency!r}."
            raise ValueError(msg)
        self.max_concurrency = max_concurrency
        # The futures of each map now running; `abort` cancels them.
        self._running: list[dict] = []
        self._aborted = False

    def _connect(self) -> Any:
        """Connect to (or start) the cluster; return the engine's handle."""
        raise NotImplementedError

    def _slots(self) -> int:
        """How many batches to keep in flight when ``max_concurrency`` is None."""
        raise NotImplementedError

    def _submit(self, fn: Callable, batch: list[tuple]) -> Any:
        raise NotImplementedError

    def _completions(self) -> Any:
        """An iterator of futures in the order they complete; ``add(future)`` puts one in."""
        raise NotImplementedError

    def _result(self, future: Any) -> tuple[list, float]:
        raise NotImplementedError

    def _cancel(self, futures: list, force: bool = False) -> None:
        """Cancel ``futures``; with ``force``, stop the ones already running if the engine can."""
        raise NotImplementedError

    def abort(self, workers: Any = ()) -> None:
        self._aborted = True
        for in_flight in list(self._running):
            self._cancel(list(in_flight), force=True)

    def _worker_died(self, error: BaseException) -> bool:
        raise NotImplementedError

    def map_unordered(
        self,
        fn: Callable,
        items: Iterable[tuple],
        *,
        lost: Callable | None = None,
        channel: tuple | None = None,
    ) -> Iterator[Any]:
        self._connect()
        slots = self.max_concurrency or self._slots()
        sizer = _BatchSizer(self.batch_target_s)
        fresh = sizer.batches(items)
        # The calls of a batch the engine gave up on (its workers kept dying) each run once
        # more, one at a time with nothing else in flight: a death then is the call's own doing.
        alone: collections.deque[tuple] = collections.deque()
        in_flight: dict[Any, tuple[list[tuple], bool]] = {}  # future -> (batch, is a solo rerun)
        completions = self._completions()

        def submit(batch: list[tuple], rerun: bool) -> None:
            future = self._submit(fn, batch, channel)
            in_flight[future] = (batch, rerun)
            completions.add(future)

        self._running.append(in_flight)
        self._aborted = False
        try:
            while True:
                if alone or any(rerun for _, rerun in in_flight.values()):
                    if not in_flight:
                        submit([alone.popleft()], rerun=True)
                else:
                    while len(in_flight) < slots and (batch := next(fresh, None)) is not None:
                        submit(batch, rerun=False)
                if not in_flight:
                    return
                future = next(completions)
                batch, rerun = in_flight.pop(future)
                try:
                    outputs, elapsed = self._result(future)
                except Exception as exc:
                    if self._aborted or self._cancelled(exc):
                        return  # aborted: the map is over
                    if not self._worker_died(exc):
                        raise
                    if not rerun:
                        alone.extend(batch)
                    elif lost is None:
                        raise
                    else:
                        yield lost(batch[0], exc)
                    continue
                sizer.observe(elapsed, len(outputs))
                yield from outputs
        finally:
            self._running.remove(in_flight)
            if in_flight:
                self._cancel(list(in_flight))

    def _cancelled(self, error: BaseException) -> bool:
        """Whether ``error`` is the engine saying a future was cancelled."""
        raise NotImplementedError

    def _when_done(self, future: Any, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from any thread) once ``future`` is done."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _submitting(self, fn: Callable, channel: tuple | None) -> Iterator[Callable]:
        self._connect()
        in_flight: dict[Any, tuple[list[tuple], bool]] = {}

        def submit(args: tuple) -> concurrent.futures.Future:
            engine = self._submit(fn, [args], channel)
            in_flight[engine] = ([args], False)
            out: concurrent.futures.Future = concurrent.futures.Future()

            def settle() -> None:
                in_flight.pop(engine, None)
                try:
                    outputs, _ = self._result(engine)
                except BaseException as exc:
                    if self._aborted or self._cancelled(exc):
                        out.cancel()
                    else:
                        out.set_exception(exc)
                    return
                out.set_result(outputs[0] if outputs else None)  # none: it came through the channel

            self._when_done(engine, settle)
            return out

        self._running.append(in_flight)
        self._aborted = False
        try:
            yield submit
        finally:
            self._running.remove(in_flight)
            if in_flight:
                self._cancel(list(in_flight))

    def _died(self, error: BaseException) -> bool:
        return self._worker_died(error)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_concurrency={self.max_concurrency!r})"


class DaskExecutor(_ClusterExecutor):
    """Runs tasks on a Dask cluster.

    With neither ``client`` nor ``address``, it uses the current default client
    (the last ``Client`` you made), or starts a ``LocalCluster`` if ``local=True``.
    Large values that every task reads are scattered to each worker once. Tasks
    on a worker that dies are rescheduled by Dask on the others.

    Dask's client keeps its last 1,000 messages for debugging, batches of tasks
    included: after a long sweep that is tens of MB in the driver (38 MiB after
    100,000 small points). Set ``distributed.admin.low-level-log-length`` lower
    before making the client to bound it.

    Args:
        client: a ``distributed.Client`` to use.
        address: a scheduler address to connect to (``"tcp://host:8786"``).
        local: with neither, start a ``LocalCluster`` (owned by this executor and
            closed by `shutdown`) instead of using the current default client.
        max_concurrency: how many batches of tasks are in flight at once; None
            for two per worker thread.
        **cluster_kwargs: passed to ``LocalCluster`` when one is started.

    Example:
        >>> from distributed import Client, LocalCluster
        >>> from nbflow import sweep
        >>> client = Client(LocalCluster(n_workers=2, dashboard_address=":0"))
        >>> sweep(lambda x: x * x, {"x": [1, 2, 3]}, executor="dask", progress=False)["result"].tolist()
        [1, 4, 9]
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
        super().__init__(max_concurrency)  # a bad value is reported whether or not the extra is installed
        _require("distributed", "dask")
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
                # A free port for its web server, so that it never clashes with another cluster's.
                cluster = distributed.LocalCluster(**{"dashboard_address": ":0", **self.cluster_kwargs})
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

    def _submit(self, fn: Callable, batch: list[tuple], channel: tuple | None) -> Any:
        # pure=False: the same arguments twice are still two runs (a retried point must run again).
        return self._connect().submit(_run_batch_on_dask, fn, batch, channel, pure=False)

    def _completions(self) -> Any:
        # The client's own loop: distributed.wait() would insist on a default client.
        return _require("distributed", "dask").as_completed(loop=self._connect().loop)

    def _result(self, future: Any) -> tuple[list, float]:
        return future.result()

    def _cancel(self, futures: list, force: bool = False) -> None:
        # Dask cannot stop a task a worker thread already runs: it is let go of, not stopped.
        self._connect().cancel(futures, force=force)

    def _cancelled(self, error: BaseException) -> bool:
        import asyncio
        import concurrent.futures

        return isinstance(error, (asyncio.CancelledError, concurrent.futures.CancelledError)) or (
            type(error).__name__ == "FutureCancelledError"
        )

    def _worker_died(self, error: BaseException) -> bool:
        return isinstance(error, _require("distributed", "dask").KilledWorker)

    def _when_done(self, future: Any, callback: Callable[[], None]) -> None:
        future.add_done_callback(lambda _: callback())

    def share(self, value: Any) -> Any:
        # Boxed: scatter() spreads a list or dict over the cluster item by item, and serializes
        # one item by item (13 s for a list of 200,000 ints, against 0.04 s boxed).
        # broadcast: a copy on every worker now, so a worker that dies does not take the only one.
        # hash=False: two steps sharing equal values must not release each other's copy.
        return self._connect().scatter([_Box(value)], broadcast=True, hash=False)[0]

    def shutdown(self) -> None:
        """Close the client and cluster this executor started; a client you passed in stays open."""
        for owned in self._owned:
            owned.close()
        self._owned.clear()
        if self.local or self.address is not None:
            self.client = None


class _Box:
    """A shared value on its way to Dask's workers, opaque to Dask's serialization."""

    __slots__ = ("token", "value")

    def __init__(self, value: Any, token: str | None = None):
        self.value = value
        self.token = token or uuid.uuid4().hex

    def __reduce__(self) -> tuple:
        return (_Box, (self.value, self.token))


# Dask worker side: the first copy of each shared value a worker unboxes, by token. A worker can
# be handed the value twice (from the broadcast, and from a peer when a task reached it first);
# its tasks must all share one copy, as they do on Ray.
_UNBOXED: collections.OrderedDict[str, Any] = collections.OrderedDict()
_UNBOXED_SIZE = 8


def _unbox(value: Any) -> Any:
    if not isinstance(value, _Box):
        return value
    if value.token not in _UNBOXED:
        _UNBOXED[value.token] = value.value
        while len(_UNBOXED) > _UNBOXED_SIZE:
            _UNBOXED.popitem(last=False)
    else:
        _UNBOXED.move_to_end(value.token)
    return _UNBOXED[value.token]


def _run_batch_on_dask(fn: Callable, batch: list[tuple], channel: tuple | None) -> tuple[list, float]:
    # Dask hands over the scattered value in place of its future; take it out of its box.
    return run_batch_flushing(fn, _resolved(batch, _unbox), channel)


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


def _run_batch_on_ray(fn: Callable, batch: list[tuple], channel: tuple | None) -> tuple[list, float]:
    # Ray hands over object refs nested in arguments as refs: fetch the shared values here.
    return run_batch_flushing(fn, _resolved(batch, _resolve), channel)


class _RayCompletions:
    """Object refs in the order their tasks complete, as Dask's ``as_completed`` gives futures."""

    def __init__(self, ray: Any):
        self._ray = ray
        self._pending: list = []

    def add(self, ref: Any) -> None:
        self._pending.append(ref)

    def __iter__(self) -> _RayCompletions:
        return self

    def __next__(self) -> Any:
        if not self._pending:
            raise StopIteration
        (ref,), self._pending = self._ray.wait(self._pending, num_returns=1)
        return ref


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
        >>> from nbflow import sweep
        >>> sweep(lambda x: x * x, {"x": [1, 2, 3]}, executor="ray", progress=False)["result"].tolist()
        [1, 4, 9]
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, max_concurrency: int | None = None, **init_kwargs: Any):
        super().__init__(max_concurrency)
        _require("ray", "ray")
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

    def _submit(self, fn: Callable, batch: list[tuple], channel: tuple | None) -> Any:
        self._connect()
        return self._remote.remote(fn, batch, channel)

    def _completions(self) -> Any:
        return _RayCompletions(self._connect())

    def _result(self, future: Any) -> tuple[list, float]:
        return self._connect().get(future)

    def _cancel(self, futures: list, force: bool = False) -> None:
        # force=True ends the worker process running the task: Ray starts another.
        ray = self._connect()
        # Only what has not finished: Ray 2.60's driver can abort on a cancel that races the
        # reply of a task just done ("Tried to complete task that was not pending", the race of
        # ray-project/ray#54798), which took a whole test session down once. Leaving finished
        # tasks alone shrinks that window to the tasks finishing right now.
        finished, _ = ray.wait(futures, num_returns=len(futures), timeout=0, fetch_local=False)
        done = set(finished)
        for future in futures:
            if future not in done:
                ray.cancel(future, force=force)

    def _cancelled(self, error: BaseException) -> bool:
        exceptions = _require("ray.exceptions", "ray")
        return isinstance(error, exceptions.TaskCancelledError)

    def _worker_died(self, error: BaseException) -> bool:
        exceptions = _require("ray.exceptions", "ray")
        return isinstance(error, (exceptions.WorkerCrashedError, exceptions.NodeDiedError))

    def _when_done(self, future: Any, callback: Callable[[], None]) -> None:
        future.future().add_done_callback(lambda _: callback())

    def share(self, value: Any) -> Any:
        return self._connect().put(value)

    def shutdown(self) -> None:
        """Stop Ray if this executor started it; a Ray you started stays up."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
            self._remote = None
