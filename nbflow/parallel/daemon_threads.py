"""Daemon threads that run calls for an event loop, reused while idle.

A synchronous task on the async executor runs on a thread, so that it cannot block the loop.
A new thread per task cost five times a cheap task; these threads wait a few seconds for the
next call before they end.

Not a ``concurrent.futures`` pool (nor ``asyncio.to_thread``, which uses one): its threads are
joined when the loop and the interpreter shut down, so a task abandoned past its timeout would
hold both. These are daemon threads, and a hung call only ever holds its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["on_daemon_thread", "submit_daemon", "idle_threads"]

# How long an idle thread waits for another call before it ends.
IDLE_S = 5.0


class _Threads:
    """Hands each call to an idle thread, or to a new one when none is idle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Each idle thread waits on its own queue, so that a call is handed to one thread that
        # is known to be waiting, never to one that has just decided to end.
        self._idle: dict[queue.SimpleQueue, threading.Thread] = {}

    def idle(self) -> set[threading.Thread]:
        with self._lock:
            return set(self._idle.values())

    def run(self, call: Callable[[], Callable[[], None]]) -> None:
        """Run ``call`` on an idle thread; what it returns is then called to hand its result over.

        The thread is idle again before the result is handed over, so a caller that makes its
        next call as soon as it has the result finds this thread waiting for it.
        """
        with self._lock:
            inbox = self._idle.popitem()[0] if self._idle else None
        if inbox is not None:
            inbox.put(call)
        else:
            threading.Thread(target=self._serve, args=(call,), name="nbflow-task", daemon=True).start()

    def _serve(self, call: Callable[[], None]) -> None:
        inbox: queue.SimpleQueue = queue.SimpleQueue()
        while True:
            hand_over = call()
            with self._lock:
                self._idle[inbox] = threading.current_thread()
            hand_over()
            try:
                call = inbox.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._idle.pop(inbox, None) is not None:
                        return
                # Handed a call just as the wait ended: it is on its way.
                call = inbox.get()


_THREADS = _Threads()
# Threads do not survive a fork, but the record of the idle ones would: a forked child handing a
# call to one of them would wait for ever. The child starts with a pool of its own.
os.register_at_fork(after_in_child=_THREADS.__init__)


def idle_threads() -> set[threading.Thread]:
    """The threads waiting for a call: they hold no task, and end by themselves when idle long enough."""
    return _THREADS.idle()


def on_daemon_thread(call: Callable[[], Any]) -> asyncio.Future:
    """``call()`` on a daemon thread, as a future of the running loop."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if not future.done():
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

    def target() -> Callable[[], None]:
        try:
            value, error = context.run(call), None
        except BaseException as exc:
            value, error = None, exc

        def hand_over() -> None:
            try:
                loop.call_soon_threadsafe(settle, value, error)
            except RuntimeError:
                pass  # the loop is gone: nobody waits for this task any more

        return hand_over

    _THREADS.run(target)
    return future


def submit_daemon(fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
    """``fn(*args)`` on a daemon thread, as a `concurrent.futures.Future` (a hung call holds only its thread)."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    def target() -> Callable[[], None]:
        if not future.set_running_or_notify_cancel():
            return lambda: None  # cancelled before it started
        try:
            value = fn(*args)
        except BaseException as exc:
            return functools.partial(future.set_exception, exc)
        return functools.partial(future.set_result, value)

    _THREADS.run(target)
    return future
