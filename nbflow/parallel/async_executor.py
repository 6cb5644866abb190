"""`AsyncExecutor`: tasks as coroutines on one event loop, with a cap on how many run at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from nbflow.parallel.executors import Executor

__all__ = ["AsyncExecutor"]

_DONE = object()


class AsyncExecutor(Executor):
    """Runs tasks as asyncio tasks, at most ``max_concurrency`` at a time.

    Meant for I/O-bound sub-graphs (LLM calls, HTTP) under ``arun``. Tasks are
    started only as earlier ones finish, so a long task list never sits in
    memory as pending coroutines. Under the sync ``run`` it runs its own event
    loop in a helper thread, so it works in a notebook too.

    Args:
        max_concurrency: the most tasks in flight at once.
    """

    name = "async"
    is_async = True
    shares_memory = True

    def __init__(self, max_concurrency: int = 100):
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            msg = f"AsyncExecutor(max_concurrency=...) takes a positive int; got {max_concurrency!r}."
            raise ValueError(msg)
        self.max_concurrency = max_concurrency
        # (loop, task) of each map now running on a loop thread of its own; `abort` cancels them.
        self._loops: list[tuple] = []

    def abort(self, workers: Any = ()) -> None:
        """Cancel the coroutines still running (a task blocked in synchronous code runs on)."""
        for loop, task in list(self._loops):
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass  # that loop has closed: its map is over

    @contextlib.contextmanager
    def _submitting(self, fn: Callable, channel: tuple | None) -> Iterator[Callable]:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="nbflow-async-asking", daemon=True)
        thread.start()

        def submit(args: tuple) -> concurrent.futures.Future:
            call = fn(*args) if inspect.iscoroutinefunction(fn) else asyncio.to_thread(fn, *args)
            return asyncio.run_coroutine_threadsafe(call, loop)

        async def settle() -> None:
            # Calls still running (a map stopped early) end cancelled, not destroyed while pending.
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            yield submit
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(settle(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    async def amap_unordered(
        self, fn: Callable, items: Iterable[tuple], *, lost: Callable | None = None
    ) -> AsyncIterator[Any]:
        pending = iter(items)
        in_flight: set[asyncio.Future] = set()

        def start_more() -> None:
            while len(in_flight) < self.max_concurrency:
                args = next(pending, None)
                if args is None:
                    return
                call = fn(*args) if inspect.iscoroutinefunction(fn) else asyncio.to_thread(fn, *args)
                in_flight.add(asyncio.ensure_future(call))

        try:
            start_more()
            while in_flight:
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                in_flight.difference_update(done)
                # Refill before handing results out: a slow consumer must not idle the cap.
                start_more()
                for future in done:
                    yield future.result()
        finally:
            for future in in_flight:
                future.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)

    def map_unordered(
        self, fn: Callable, items: Iterable[tuple], *, lost: Callable | None = None
    ) -> Iterator[Any]:
        results: queue.Queue = queue.Queue()
        started = threading.Event()
        loop_and_task: list = []

        async def pump() -> None:
            loop_and_task.extend((asyncio.get_running_loop(), asyncio.current_task()))
            self._loops.append(tuple(loop_and_task))
            started.set()
            try:
                async for result in self.amap_unordered(fn, items):
                    results.put((result, None))
            except asyncio.CancelledError:
                pass
            except BaseException as exc:
                results.put((_DONE, exc))
                return
            results.put((_DONE, None))

        thread = threading.Thread(target=asyncio.run, args=(pump(),), name="nbflow-async-loop", daemon=True)
        thread.start()
        started.wait()
        try:
            while True:
                result, error = results.get()
                if result is _DONE:
                    if error is not None:
                        raise error
                    return
                yield result
        finally:
            loop, task = loop_and_task
            self._loops.remove((loop, task))
            if thread.is_alive():
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:
                    # The loop closed between the check and the call: the pump had finished.
                    pass
            thread.join()

    def __repr__(self) -> str:
        return f"AsyncExecutor(max_concurrency={self.max_concurrency})"
