"""Executors: the registry, names, defaults, streaming and shutting down."""

import asyncio
import contextlib
import sys
import threading

import pytest

from nbflow import MissingDependencyError, UnknownExecutorError
from nbflow.executors import (
    AsyncExecutor,
    Executor,
    JoblibExecutor,
    MultiProcessExecutor,
    MultiThreadedExecutor,
    SequentialExecutor,
    known_executors,
    register_executor,
    resolve_executor,
)


def double(x):
    return 2 * x


async def adouble(x):
    await asyncio.sleep(0)
    return 2 * x


def test_resolve_executor_maps_names_to_executors():
    """The string shortcuts give the matching executor classes."""
    assert isinstance(resolve_executor("threads"), MultiThreadedExecutor)
    assert isinstance(resolve_executor("processes"), MultiProcessExecutor)
    assert isinstance(resolve_executor("sequential"), SequentialExecutor)
    assert isinstance(resolve_executor("async"), AsyncExecutor)
    assert {"async", "dask", "processes", "ray", "sequential", "threads"} <= set(known_executors())


def test_resolve_executor_unknown_name_lists_the_known_ones():
    """A typo names itself, every known executor, and how to register one."""
    with pytest.raises(UnknownExecutorError) as info:
        resolve_executor("daskk")
    message = str(info.value)
    assert "No executor 'daskk'" in message and "'dask'" in message and "register_executor('daskk'" in message


def test_resolve_executor_refuses_other_types():
    """An int is not an executor; the message lists the names."""
    with pytest.raises(TypeError, match=r"got int"):
        resolve_executor(4)


def test_resolve_executor_defaults_to_threads_or_async():
    """No choice means threads for run and AsyncExecutor for arun."""
    assert isinstance(resolve_executor(None), MultiThreadedExecutor)
    assert isinstance(resolve_executor(None, for_async=True), AsyncExecutor)


def test_resolve_executor_default_follows_joblib_parallel_config():
    """Inside joblib.parallel_config(backend=...), the default executor uses that backend."""
    import joblib

    with joblib.parallel_config(backend="sequential"):
        executor = resolve_executor(None)
        assert type(executor) is JoblibExecutor and executor.backend is None
        assert sorted(executor.map_unordered(double, [(1,), (2,)])) == [2, 4]


def test_register_executor_adds_a_name():
    """A registered factory is used for its name, and shows up in the known names."""
    register_executor("two-threads", lambda: MultiThreadedExecutor(max_concurrency=2))
    try:
        executor = resolve_executor("two-threads")
        assert executor.max_concurrency == 2 and "two-threads" in known_executors()
    finally:
        from nbflow.parallel import registry

        registry._FACTORIES.pop("two-threads")


def test_register_executor_checks_what_the_factory_returns():
    """A factory that returns something else is reported with the name it was registered under."""
    register_executor("broken", lambda: "not an executor")
    try:
        with pytest.raises(TypeError, match=r"registered as executor 'broken' returned str"):
            resolve_executor("broken")
    finally:
        from nbflow.parallel import registry

        registry._FACTORIES.pop("broken")


@pytest.mark.parametrize("name", ["dask", "ray"])
def test_cluster_executor_without_its_extra_names_the_pip_command(monkeypatch, name):
    """Without the optional package, the error says which extra to install."""
    module = {"dask": "distributed", "ray": "ray"}[name]
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like to import
    with pytest.raises(MissingDependencyError, match=rf"pip install 'nbflow\[{name}\]'"):
        resolve_executor(name)


@pytest.mark.parametrize(
    "executor", [SequentialExecutor(), MultiThreadedExecutor(3), JoblibExecutor("threading", 2)]
)
def test_sync_executors_yield_every_result(executor):
    """map_unordered yields one result per item, in any order."""
    assert sorted(executor.map_unordered(double, ((i,) for i in range(100)))) == [2 * i for i in range(100)]


def test_process_executor_runs_in_other_processes(shutdown_processes):
    """MultiProcessExecutor runs calls in worker processes."""
    import os

    pids = set(MultiProcessExecutor(2).map_unordered(os.getpid, [() for _ in range(8)]))
    assert os.getpid() not in pids


def test_thread_executor_streams_results_before_all_finish():
    """The first result arrives while a later call is still blocked."""
    release = threading.Event()

    def work(i):
        if i == 1:
            assert release.wait(10)
        return i

    results = MultiThreadedExecutor(2).map_unordered(work, [(0,), (1,)])
    assert next(results) == 0
    release.set()
    assert list(results) == [1]


def test_executors_consume_their_input_lazily():
    """A long input iterator is not drained up front, so memory stays bounded."""
    pulled = []

    def items():
        for i in range(100_000):
            pulled.append(i)
            yield (i,)

    results = MultiThreadedExecutor(2).map_unordered(double, items())
    next(results)
    results.close()
    assert len(pulled) < 10_000


def test_async_executor_runs_coroutines_and_plain_functions():
    """AsyncExecutor awaits coroutine functions and runs plain ones in threads, from sync or async code."""
    executor = AsyncExecutor(max_concurrency=5)
    assert sorted(executor.map_unordered(adouble, [(i,) for i in range(20)])) == [2 * i for i in range(20)]
    assert sorted(executor.map_unordered(double, [(i,) for i in range(5)])) == [0, 2, 4, 6, 8]

    async def collect():
        return sorted([r async for r in executor.amap_unordered(adouble, [(i,) for i in range(7)])])

    assert asyncio.run(collect()) == [2 * i for i in range(7)]


def test_async_executor_works_where_a_loop_is_already_running():
    """The sync API of AsyncExecutor works inside a running loop (as in a notebook cell)."""

    async def inside():
        return sorted(AsyncExecutor(3).map_unordered(adouble, [(i,) for i in range(4)]))

    assert asyncio.run(inside()) == [0, 2, 4, 6]


def test_async_executor_closing_early_cancels_the_rest():
    """Closing the stream cancels in-flight coroutines and starts no more."""
    started = []

    async def slow(i):
        started.append(i)
        await asyncio.sleep(10)
        return i

    async def first_only():
        stream = AsyncExecutor(2).amap_unordered(slow, [(i,) for i in range(100)])
        task = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stream.aclose()

    asyncio.run(first_only())
    assert started == [0, 1]


def test_sync_executor_bridges_onto_an_event_loop():
    """amap_unordered of a sync executor (the default bridge) yields every result on the loop."""

    async def collect():
        return sorted(
            [r async for r in MultiThreadedExecutor(2).amap_unordered(double, [(i,) for i in range(10)])]
        )

    assert asyncio.run(collect()) == [2 * i for i in range(10)]


def test_executor_max_concurrency_is_checked():
    """Zero or a non-int is refused with the accepted values."""
    with pytest.raises(ValueError, match=r"positive int \(or -1 for all cores\); got 0"):
        MultiThreadedExecutor(0)
    with pytest.raises(ValueError, match=r"AsyncExecutor\(max_concurrency=...\) takes a positive int; got 0"):
        AsyncExecutor(0)


def test_executor_base_has_one_method_to_implement():
    """A subclass that only implements map_unordered works through the async bridge too."""

    class Inline(Executor):
        name = "inline"

        def map_unordered(self, fn, items):
            return (fn(*args) for args in items)

    async def collect():
        return [r async for r in Inline().amap_unordered(double, [(1,), (2,)])]

    assert asyncio.run(collect()) == [2, 4]
