"""Synchronous tasks on the async executor run on reused daemon threads: every call runs once, none waits on a hung one."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from nbflow.parallel import daemon_threads
from nbflow.parallel.daemon_threads import on_daemon_thread

_WHO = contextvars.ContextVar("who", default="nobody")


def _run(*calls):
    async def main():
        return await asyncio.gather(*(on_daemon_thread(c) for c in calls), return_exceptions=True)

    return asyncio.run(main())


def test_calls_one_after_another_reuse_a_thread():
    async def main():
        return [await on_daemon_thread(threading.get_ident) for _ in range(200)]

    assert len(set(asyncio.run(main()))) <= 2


def test_a_hung_call_holds_only_its_own_thread():
    release = threading.Event()

    async def main():
        hung = on_daemon_thread(lambda: release.wait(30))
        done = await asyncio.wait_for(on_daemon_thread(lambda: "free"), timeout=10)
        release.set()
        return done, await hung

    assert asyncio.run(main()) == ("free", True)


def test_results_exceptions_and_context_reach_the_caller():
    def fails():
        raise KeyError("inside")

    async def main():
        _WHO.set("caller")
        return await asyncio.gather(
            on_daemon_thread(lambda: 41 + 1),
            on_daemon_thread(fails),
            on_daemon_thread(_WHO.get),
            return_exceptions=True,
        )

    value, error, who = asyncio.run(main())
    assert value == 42 and isinstance(error, KeyError) and who == "caller"


@pytest.mark.parametrize("idle_s", [0.0, 0.0005, 0.002])
def test_no_call_is_lost_when_it_is_handed_over_as_an_idle_thread_gives_up(monkeypatch, idle_s):
    """Idle threads end at about the moment new calls arrive: each call still runs exactly once."""
    monkeypatch.setattr(daemon_threads, "IDLE_S", idle_s)
    ran = []
    lock = threading.Lock()

    def note(i):
        with lock:
            ran.append(i)
        return i

    async def main():
        out = []
        for burst in range(40):
            out += await asyncio.gather(
                *(on_daemon_thread(lambda i=i: note(i)) for i in range(burst * 10, burst * 10 + 10))
            )
            time.sleep(idle_s)
        return out

    assert asyncio.run(main()) == list(range(400))
    assert sorted(ran) == list(range(400))


def test_idle_threads_end(monkeypatch):
    monkeypatch.setattr(daemon_threads, "IDLE_S", 0.05)
    before = {t.ident for t in threading.enumerate() if t.name == "nbflow-task"}
    _run(*[lambda: None] * 5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = {t.ident for t in threading.enumerate() if t.name == "nbflow-task"} - before
        if not alive:
            break
        time.sleep(0.05)
    assert not alive


def _sweep_in_child(queue):
    from nbflow import sweep

    df = sweep(lambda x: x + 1, {"x": [1, 2]}, executor="async", progress=False)
    queue.put(df["result"].tolist())


def test_a_forked_child_does_not_hand_calls_to_threads_it_did_not_inherit():
    """Threads do not survive a fork, but the record of idle ones would: the child must start its own."""
    import multiprocessing

    async def main():
        return await on_daemon_thread(lambda: 1)

    asyncio.run(main())  # leaves an idle thread in this process, once it has handed back
    deadline = time.monotonic() + 10
    while not daemon_threads.idle_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert daemon_threads.idle_threads()
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_sweep_in_child, args=(results,))
    child.start()
    try:
        assert results.get(timeout=60) == [2, 3]
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
