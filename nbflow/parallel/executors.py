"""Executors: where parallel tasks run. The only place that knows joblib, asyncio, Dask or Ray.

An executor takes a function and an iterable of argument tuples and yields the
results *as they complete*. It consumes the iterable lazily, so a parallel
action can stream a million tasks through a bounded number in flight, and when
its consumer stops early (a ``reduce`` that has enough, a cancel, Ctrl-C) it
drops what has not started.

Following joblib's backend seam, `Executor` has one method to implement
(`Executor.map_unordered`) and hooks with working defaults: `amap_unordered`
(bridges the sync method onto an event loop), `share` and `shutdown`.
Capabilities are flags: ``ships_tasks`` (tasks cross a process boundary, so
nbflow pickles them itself and sends only the keys they read),
``shares_values`` (`share` sends a large value to the workers once, instead of
with every task), ``flushes_early`` (its batches send what they finished through
a `nbflow.parallel.channel.Channel` while a stalled task holds them, when given
``channel=``), ``runs_inline`` (tasks run in the caller's own thread),
``shares_memory`` (tasks run in this process, so they may hand results over
through a queue of the driver's) and ``is_async``. The `abort` hook stops what is running, as far as the backend can,
when a run is cancelled or interrupted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import itertools
import os
import queue
import signal
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator
from typing import Any

from nbflow.parallel.channel import run_batch_flushing
from nbflow.parallel.daemon_threads import submit_daemon

__all__ = [
    "Executor",
    "SequentialExecutor",
    "JoblibExecutor",
    "MultiThreadedExecutor",
    "MultiProcessExecutor",
    "configured",
    "concurrency",
]


class Executor:
    """Runs calls and yields their results as they complete."""

    name: str = "executor"
    ships_tasks: bool = False
    shares_values: bool = False
    flushes_early: bool = False
    runs_inline: bool = False
    shares_memory: bool = False
    is_async: bool = False

    def share(self, value: Any) -> Any:
        """Send ``value`` to the workers once; return a handle that calls may carry in its place.

        Only called when ``shares_values`` is set, for large values that many
        tasks read. A call may carry the handle as one of its arguments, or as a
        value in a dict argument; the worker receives the value in its place.
        The value is released when the last reference to its handle goes. The
        default shares nothing: the value itself travels with every call.
        """
        return value

    def map_unordered(
        self, fn: Callable, items: Iterable[tuple], *, lost: Callable | None = None
    ) -> Iterator[Any]:
        """Yield ``fn(*args)`` for each tuple in ``items``, in completion order.

        Closing the returned generator must drop the calls not yet started.

        Args:
            fn: the function to call.
            items: argument tuples, consumed lazily.
            lost: for executors whose workers can die: called as ``lost(args, error)``
                for a call that took its worker down again after being rescheduled;
                what it returns is yielded as that call's result. Without it, the
                error is raised.
        """
        raise NotImplementedError

    async def amap_unordered(
        self, fn: Callable, items: Iterable[tuple], *, lost: Callable | None = None
    ) -> AsyncIterator[Any]:
        """`map_unordered` for an event loop; by default the sync version runs in a thread."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        done = object()

        def pump() -> None:
            try:
                # Only executors with worker processes take `lost`; others may not accept it.
                results = self.map_unordered(fn, _until(items, stop), **({"lost": lost} if lost else {}))
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, (done, exc))
                return
            try:
                for result in results:
                    loop.call_soon_threadsafe(queue.put_nowait, (result, None))
                    if stop.is_set():
                        break
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, (done, exc))
                return
            finally:
                results.close()
            loop.call_soon_threadsafe(queue.put_nowait, (done, None))

        thread = threading.Thread(target=pump, name=f"nbflow-{self.name}-bridge", daemon=True)
        thread.start()
        try:
            while True:
                result, error = await queue.get()
                if result is done:
                    if error is not None:
                        raise error
                    return
                yield result
        finally:
            stop.set()
            await asyncio.to_thread(thread.join)

    def map_asking(
        self,
        fn: Callable,
        items: Iterable[tuple],
        *,
        lost: Callable | None = None,
        channel: tuple | None = None,
    ) -> Iterator[Any]:
        """`map_unordered` for items made only as earlier results come in (an adaptive search's).

        Each item starts the moment it is made, and results are yielded as they complete while
        the next item is awaited. A map that pulled items in batches, or under a lock its own
        results need (joblib does both), would wait on itself. ``items`` bounds how many are in
        flight. A call whose worker died runs once more, then goes to ``lost``.
        """
        done: queue.SimpleQueue = queue.SimpleQueue()
        running: set[concurrent.futures.Future] = set()
        stop = threading.Event()
        with self._submitting(fn, channel) as submit:

            def start(args: tuple, again: bool = False) -> None:
                future = submit(args)
                running.add(future)
                future.add_done_callback(lambda f: done.put((args, f, again)))

            def feed() -> None:
                count = 0
                try:
                    for args in _until(items, stop):
                        start(args)
                        count += 1
                except BaseException as exc:
                    done.put((_FED, exc, None))
                    return
                done.put((_FED, count, None))

            feeder = threading.Thread(target=feed, name=f"nbflow-{self.name}-asking", daemon=True)
            feeder.start()
            fed, finished = None, 0
            try:
                while fed is None or finished < fed:
                    args, future, again = done.get()
                    if args is _FED:
                        if isinstance(future, BaseException):
                            raise future
                        fed = future
                        continue
                    running.discard(future)
                    try:
                        result = future.result()
                    except concurrent.futures.CancelledError:
                        finished += 1
                        continue
                    except Exception as exc:
                        if not self._died(exc) or (again and lost is None):
                            raise
                        if again:
                            result = lost(args, exc)
                        else:
                            start(args, again=True)
                            continue
                    finished += 1
                    yield result
            finally:
                stop.set()
                for future in list(running):
                    future.cancel()
                feeder.join(1.0)

    @contextlib.contextmanager
    def _submitting(self, fn: Callable, channel: tuple | None) -> Iterator[Callable]:
        """``submit(args)``: start ``fn(*args)`` now, returning a `concurrent.futures.Future`.

        The default runs each call as a `map_unordered` of one, on a thread of the driver:
        right on any executor, fast on none. Executors override it with their engine's own.
        """
        kwargs = {"channel": channel} if channel is not None else {}
        yield lambda args: submit_daemon(lambda: next(iter(self.map_unordered(fn, [args], **kwargs))))

    def _died(self, error: BaseException) -> bool:
        """Whether ``error`` says a call's worker died under it (rather than the call failing)."""
        return False

    def abort(self, workers: Collection[int] = ()) -> None:
        """Stop the calls still running, as far as the backend can (after a cancel or Ctrl-C).

        Called from the driver while another thread may be waiting on `map_unordered`,
        which must then end soon. The default does nothing: a thread cannot be stopped.

        Args:
            workers: the pids of worker processes known to be running this step's calls.
        """

    def shutdown(self) -> None:
        """Release workers this executor started (pools, clusters). The default has none."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_FED = object()  # map_asking's feeder made its last call


def _until(items: Iterable[tuple], stop: threading.Event) -> Iterator[tuple]:
    for item in items:
        if stop.is_set():
            return
        yield item


class SequentialExecutor(Executor):
    """Runs tasks one after another in the calling thread: for debugging, and a baseline.

    Being in the caller's thread, a task stops for Ctrl-C and for its timeout (an
    alarm signal in the main thread), but `cancel` takes effect between tasks only.
    """

    name = "sequential"
    runs_inline = True
    shares_memory = True

    def map_unordered(
        self, fn: Callable, items: Iterable[tuple], *, lost: Callable | None = None
    ) -> Iterator[Any]:
        for args in items:
            yield fn(*args)


class JoblibExecutor(Executor):
    """Runs tasks with ``joblib.Parallel`` on any joblib backend.

    Args:
        backend: a joblib backend name (``"threading"``, ``"loky"``, ``"dask"``,
            ``"ray"`` ...), or None for whatever an enclosing
            ``joblib.parallel_config`` chose.
        max_concurrency: how many tasks run at once (joblib's ``n_jobs``); None
            takes ``parallel_config``'s ``n_jobs``, else the backend's default.
        **parallel_kwargs: passed to ``joblib.Parallel`` (``batch_size``,
            ``pre_dispatch``, ``timeout`` ...).
    """

    name = "joblib"
    # How long one batch of tasks should take: long enough to hide joblib's per-call cost
    # (tens of µs on threads, a millisecond or more across processes), short enough to stream.
    batch_target_s = 0.005

    def __init__(
        self, backend: str | None = None, max_concurrency: int | None = None, **parallel_kwargs: Any
    ):
        if max_concurrency is not None and (not isinstance(max_concurrency, int) or max_concurrency == 0):
            msg = f"{type(self).__name__}(max_concurrency=...) takes a positive int (or -1 for all cores); got {max_concurrency!r}."
            raise ValueError(msg)
        self.backend = backend
        self.max_concurrency = max_concurrency
        self.parallel_kwargs = parallel_kwargs
        self._aborted = False

    def _default_concurrency(self) -> int | None:
        return None

    @property
    def n_jobs(self) -> int:
        """How many tasks run at once: ``max_concurrency``, else joblib's setting, else this executor's default."""
        n = self.max_concurrency or configured("n_jobs") or self._default_concurrency() or 1
        # joblib's negative counts: -1 is every core, -2 all but one...
        return max(1, (os.cpu_count() or 1) + 1 + n) if n < 0 else n

    def _parallel(self) -> Any:
        import joblib

        n_jobs = self.max_concurrency
        if n_jobs is None and configured("n_jobs") is None:
            n_jobs = self._default_concurrency()
        # We batch tasks ourselves (see _BatchSizer), so joblib should not batch our batches.
        kwargs = {"batch_size": 1, **self.parallel_kwargs}
        return joblib.Parallel(backend=self.backend, n_jobs=n_jobs, return_as="generator_unordered", **kwargs)

    def map_unordered(
        self,
        fn: Callable,
        items: Iterable[tuple],
        *,
        lost: Callable | None = None,
        channel: tuple | None = None,
    ) -> Iterator[Any]:
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        sizer = _BatchSizer(self.batch_target_s)
        batches = sizer.batches(iter(items))
        held: list[list[tuple]] = []  # a batch made but not started when a round paused
        self._aborted = False
        while True:
            pending: dict[int, list[tuple]] = {}
            room = _Room(self._ahead_limit(), held)
            results = self._dispatch(fn, _numbered(room.rounds(batches), pending), channel)
            try:
                for batch_id, outputs, elapsed in results:
                    pending.pop(batch_id, None)
                    sizer.observe(elapsed, len(outputs))
                    yield from outputs
                    room.taken(len(outputs))
                if not room.paused:
                    return
                continue  # everything started was taken: the next round
            except Exception as exc:
                # A worker process died (killed, out of memory, a crash in native code). loky
                # replaces the whole pool, so every call in flight is a suspect: run each again
                # alone, where a death can only be its own doing. Then go on with the rest.
                # After `abort` the deaths are ours, and nothing runs again.
                if self._aborted:
                    return
                if not isinstance(exc, TerminatedWorkerError):
                    raise
                suspects = [args for batch in pending.values() for args in batch]
            finally:
                _close_quietly(results)
            for args in suspects:
                yield self._alone(fn, args, lost, channel)

    def _ahead_limit(self) -> int | None:
        """How many calls may be started beyond the results taken; None for no limit of ours."""
        return None

    def _dispatch(
        self, fn: Callable, batches: Iterator[tuple[int, list[tuple]]], channel: tuple | None = None
    ) -> Iterator[Any]:
        import joblib

        return self._parallel()(
            joblib.delayed(_run_batch)(fn, batch, number, channel) for number, batch in batches
        )

    def _alone(self, fn: Callable, args: tuple, lost: Callable | None, channel: tuple | None = None) -> Any:
        """Run one suspect call by itself, twice at most; after a second worker death, hand it to ``lost``."""
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        for attempt in range(2):
            results = self._dispatch(fn, iter([(0, [args])]), channel)
            try:
                return next(results)[1][0]
            except TerminatedWorkerError as exc:
                if attempt == 1:
                    if lost is None:
                        raise
                    return lost(args, exc)
            finally:
                _close_quietly(results)
        raise AssertionError("unreachable")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_concurrency={self.max_concurrency!r})"


class MultiThreadedExecutor(JoblibExecutor):
    """Threads (joblib's ``threading`` backend): the default, cheap and shares memory.

    Best for I/O-bound tasks and for code that releases the GIL (numpy, pandas,
    scikit-learn). Nothing is pickled.
    """

    name = "threads"
    shares_memory = True

    def __init__(self, max_concurrency: int | None = None, **parallel_kwargs: Any):
        super().__init__("threading", max_concurrency, **parallel_kwargs)

    def _default_concurrency(self) -> int:
        # concurrent.futures.ThreadPoolExecutor's default: enough threads to overlap I/O.
        return min(32, (os.cpu_count() or 1) + 4)

    @contextlib.contextmanager
    def _submitting(self, fn: Callable, channel: tuple | None) -> Iterator[Callable]:
        # Daemon threads, not a pool that joins them: a point abandoned past its timeout, or
        # running on after a cancel, must not hold up the end of the run (or of the interpreter).
        yield lambda args: submit_daemon(fn, *args)


class MultiProcessExecutor(JoblibExecutor):
    """Processes (joblib's ``loky`` backend): for CPU-bound pure-Python tasks.

    Tasks are pickled with cloudpickle, so actions defined in a notebook work;
    each task receives only the state keys its graph reads and writes. Workers
    stay warm between runs (loky reuses them); `shutdown` stops them.
    """

    name = "processes"
    ships_tasks = True
    flushes_early = True
    batch_target_s = 0.05

    def __init__(self, max_concurrency: int | None = None, **parallel_kwargs: Any):
        super().__init__("loky", max_concurrency, **parallel_kwargs)

    def _default_concurrency(self) -> int:
        return -1

    def _ahead_limit(self) -> int | None:
        # joblib starts a new batch whenever one completes, taken or not: trivial tasks on worker
        # processes finish faster than reduce takes them, and the results would pile up in the
        # driver (a third of 100,000 at once). Twice what joblib keeps in flight (2 * n_jobs
        # batches): a round pauses only when reduce, not the workers, is behind.
        if "pre_dispatch" in self.parallel_kwargs:
            return None  # the caller chose how far joblib runs ahead
        return 4 * self.n_jobs * _BatchSizer.MOST

    @contextlib.contextmanager
    def _submitting(self, fn: Callable, channel: tuple | None) -> Iterator[Callable]:
        from joblib.externals.loky import get_reusable_executor

        # The pool joblib keeps, at this executor's size: a pool of loky's own making would
        # replace joblib's (and the next map's would replace it back), starting every worker anew.
        list(self.map_unordered(_nothing, [()]))

        def submit(args: tuple) -> concurrent.futures.Future:
            pool = get_reusable_executor(reuse=True)
            return _then(pool.submit(_run_batch, fn, [args], 0, channel), lambda r: r[1][0] if r[1] else None)

        yield submit

    def _died(self, error: BaseException) -> bool:
        from concurrent.futures.process import BrokenProcessPool

        from joblib.externals.loky.process_executor import TerminatedWorkerError

        return isinstance(error, (TerminatedWorkerError, BrokenProcessPool))

    def abort(self, workers: Collection[int] = ()) -> None:
        """End the worker processes running this step's tasks, and with them the tasks.

        Only those: the pool is shared by every map in this process, and another one may be
        running. loky replaces the ended workers, and any other map running on them then
        runs its interrupted calls again.
        """
        self._aborted = True
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass  # already gone

    def shutdown(self) -> None:
        from joblib.externals.loky import get_reusable_executor

        # reuse=True: the pool as it is. With other arguments loky would first replace it, waiting
        # under its lock for what runs, which a map still dispatching needs: a deadlock.
        get_reusable_executor(reuse=True).shutdown(wait=True, kill_workers=True)


def _run_batch(
    fn: Callable, batch: list[tuple], batch_id: int, channel: tuple | None = None
) -> tuple[int, list, float]:
    outputs, elapsed = run_batch_flushing(fn, batch, channel)
    return batch_id, outputs, elapsed


def _nothing() -> None:
    return None


def _then(future: concurrent.futures.Future, transform: Callable[[Any], Any]) -> concurrent.futures.Future:
    """A future of ``transform(result)`` of ``future``; its exception, if it raises."""
    out: concurrent.futures.Future = concurrent.futures.Future()

    def settle(done: Any) -> None:
        try:
            out.set_result(transform(done.result()))
        except BaseException as exc:
            out.set_exception(exc)

    future.add_done_callback(settle)
    return out


def _numbered(
    fresh: Iterator[list[tuple]], pending: dict[int, list[tuple]]
) -> Iterator[tuple[int, list[tuple]]]:
    """Batches to dispatch, each remembered in ``pending`` until its result is back."""
    for number, batch in enumerate(fresh):
        pending[number] = batch
        yield number, batch


def _close_quietly(results: Any) -> None:
    # Closing early is how a reduce that has enough, or a cancel, drops the rest; joblib
    # warns about it as if it were an accident.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*tasks (have been successfully executed|which were still)"
        )
        results.close()


class _BatchSizer:
    """Groups tasks into batches sized so that each takes about ``target_s``.

    Trivial tasks (microseconds each) are sent hundreds at a time, which is what
    lets a map of 10,000 tiny tasks keep pace with a hand-written joblib loop;
    anything slower than the target goes one task per batch, so long tasks
    still spread over every worker and stream back one by one.
    """

    MOST = 512

    def __init__(self, target_s: float, most: int = MOST):
        self.target_s = target_s
        self.most = most
        self.size = 1
        self._per_item: float | None = None

    def observe(self, elapsed: float, count: int) -> None:
        if not count:
            return
        per_item = elapsed / count
        # Smooth, but let a slow batch shrink the size at once: overshooting hurts more.
        self._per_item = (
            per_item if self._per_item is None else max(per_item, 0.7 * self._per_item + 0.3 * per_item)
        )
        self.size = max(1, min(self.most, int(self.target_s / max(self._per_item, 1e-7))))

    def batches(self, items: Iterable[tuple]) -> Iterator[list[tuple]]:
        iterator = iter(items)
        while batch := list(itertools.islice(iterator, self.size)):
            yield batch


class _Room:
    """Ends a round of joblib dispatching while more than ``limit`` calls started wait to be taken.

    joblib starts the next batch from the callback of one that completed, under its own lock, so
    the batches cannot be held back there: the round ends instead, and the next starts once
    everything started in this one was taken.
    """

    def __init__(self, limit: int | None, held: list[list[tuple]]) -> None:
        self.limit = limit
        self.held = held
        self.paused = False
        self._out = 0

    def rounds(self, batches: Iterator[list[tuple]]) -> Iterator[list[tuple]]:
        """This round's batches: the one held back last round, then new ones while there is room."""
        while self.held or (batch := next(batches, None)) is not None:
            if self.held:
                batch = self.held.pop()
            if self.limit is not None and self._out > self.limit:
                self.held.append(batch)
                self.paused = True
                return
            self._out += len(batch)
            yield batch

    def taken(self, count: int) -> None:
        self._out -= count


def concurrency(executor: Executor) -> int:
    """How many calls ``executor`` runs at once (its ``n_jobs``, ``max_concurrency`` or cluster slots)."""
    if executor.runs_inline:
        return 1
    n = getattr(executor, "n_jobs", None) or getattr(executor, "max_concurrency", None)
    if n is None and hasattr(executor, "_slots"):
        n = executor._slots()
    return max(1, int(n or 1))


def configured(key: str) -> Any:
    """What an enclosing ``joblib.parallel_config`` set for ``key``, or None."""
    from joblib import parallel

    config = getattr(parallel._backend, "config", None) or {}
    value = config.get(key)
    default = parallel.default_parallel_config.get(key)
    return None if value is None or value is default else value


_MOVED = ("register_executor", "resolve_executor", "known_executors")


def __getattr__(name: str) -> Any:
    # Deprecated re-exports, for one release: the registry has a module of its own, which imports
    # this one, so it is reached only when an old import asks for it (no circle at import time).
    if name not in _MOVED:
        msg = f"module 'nbflow.parallel.executors' has no attribute {name!r}"
        raise AttributeError(msg)
    warnings.warn(
        f"nbflow.parallel.executors.{name} moved to nbflow.parallel.registry (also nbflow.{name}); "
        "the old path goes in the next release.",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module("nbflow.parallel.registry"), name)
