"""A channel from worker processes to the driver, for what they have to say while a batch runs.

Tasks sent to worker processes travel in batches, and a batch returns only when its
last task ends. A batch holding one hung task would hold back every task before it
that had finished; cancelled, they would be reported ``cancelled`` although they ran.
So while a batch runs in a worker, what its tasks finished is sent to the driver
every `FLUSH_S` seconds through this channel, and the batch returns only the rest.
A batch that runs longer than that also says which process runs it, so that a
cancel can end that process and no other. A batch that ends quickly (the usual
case) sends nothing here.

Messages are ``("outputs", [result, ...])``, ``("busy", pid)`` and ``("reports", [report, ...])``:
what tasks reported with `nbflow.report` since the last look (see `nbflow.parallel.reporting`),
sent every tick whatever the batch's age, so that a live view sees a point's curve grow.

A channel made with ``answer`` (a step that prunes) also takes questions: each report goes
at once as ``("ask", report)``, and the task waits for the one-byte answer, whether to stop.

The channel is a Unix socket in a private temporary folder (0700), and a worker must
present a random token before anything it sends is read. A worker that cannot reach
the channel (another machine of a cluster) keeps everything for its batch's return.

Each worker also watches its parent process: if the driver dies, the worker exits
rather than going on with a task nobody will collect.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import os
import pickle
import secrets
import selectors
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Channel", "FLUSH_S", "HEARD_WITHIN_S", "run_batch_flushing", "sending"]

FLUSH_S = 0.2
# The watcher looks this often, so a batch is heard from (its pid, what it finished) at most
# FLUSH_S + _TICK_S after it starts: with one look per FLUSH_S, a batch that started just after a
# look waited two, and a stop that came early in it could miss its pid and leave it running.
_TICK_S = FLUSH_S / 4
# How long after a stop the driver waits to hear from every batch that was running then; the
# rest is margin for a busy machine.
HEARD_WITHIN_S = 2 * FLUSH_S
_LENGTH = struct.Struct("!I")
_YES, _NO = b"\x01", b"\x00"
# How long a task waits for the driver's answer before going on as if told to go on.
_ANSWER_WITHIN_S = 30.0

# In a worker process, while a batch runs: where its tasks' live messages go (a deque the
# watcher empties into the channel every tick). None elsewhere.
sending: contextvars.ContextVar[Callable[[Any], None] | None] = contextvars.ContextVar(
    "nbflow_sending", default=None
)


class Channel:
    """The driver's end: a listening Unix socket whose messages go to ``deliver``.

    Args:
        deliver: called (from the channel's thread) with each message's unpickled payload.
        answer: called with each report a task asks about; its truth is the answer. None:
            tasks only tell.
    """

    def __init__(self, deliver: Callable[[Any], None], answer: Callable[[Any], Any] | None = None) -> None:
        self._deliver = deliver
        self._answer = answer
        self._dir = tempfile.mkdtemp(prefix="nbflow-channel-")
        self.address = os.path.join(self._dir, "s")
        self.token = secrets.token_bytes(16)
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.address)
        self._server.listen(64)
        self._server.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="nbflow-channel", daemon=True)
        self._thread.start()

    @property
    def spec(self) -> tuple[str, bytes, int, bool]:
        """What a worker needs to reach the channel: its address, token, the driver's pid, and whether to ask."""
        return self.address, self.token, os.getpid(), self._answer is not None

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._server, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        buffers: dict[socket.socket, list] = {}  # conn -> [bytearray, authenticated]
        try:
            while True:
                for key, _ in sel.select():
                    if key.data == "wake":
                        return
                    if key.data == "accept":
                        try:
                            conn, _ = self._server.accept()
                        except OSError:
                            continue
                        conn.setblocking(False)
                        buffers[conn] = [bytearray(), False]
                        sel.register(conn, selectors.EVENT_READ, "conn")
                        continue
                    conn = key.fileobj
                    try:
                        chunk = conn.recv(1 << 16)
                    except OSError:
                        chunk = b""
                    if not chunk or not self._read(buffers[conn], chunk, conn):
                        sel.unregister(conn)
                        conn.close()
                        del buffers[conn]
        finally:
            for conn in buffers:
                conn.close()
            sel.close()

    def _read(self, state: list, chunk: bytes, conn: socket.socket) -> bool:
        """Take in ``chunk``; deliver each whole frame. False to drop the connection."""
        buffer = state[0]
        buffer += chunk
        while len(buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer)
            if len(buffer) < _LENGTH.size + size:
                break
            frame = bytes(buffer[_LENGTH.size : _LENGTH.size + size])
            del buffer[: _LENGTH.size + size]
            if not state[1]:
                # Nothing is unpickled before the token: only our own workers hold it.
                if not secrets.compare_digest(frame, self.token):
                    return False
                state[1] = True
                continue
            message = pickle.loads(frame)
            if message[0] == "ask":
                conn.sendall(_YES if self._answered(message[1]) else _NO)
            else:
                self._deliver(message)
        return True

    def _answered(self, question: Any) -> bool:
        try:
            return bool(self._answer(question)) if self._answer is not None else False
        except Exception:
            return False  # a listener's failure must not stop the point, nor this thread

    def close(self) -> None:
        """Stop listening and remove the socket; messages already read were delivered."""
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join()
        for s in (self._server, self._wake_r, self._wake_w):
            s.close()
        shutil.rmtree(self._dir, ignore_errors=True)


# -- the worker's end ---------------------------------------------------------------------------


class _Outbox:
    """One worker's connection to one channel, opened on first use."""

    def __init__(self, address: str, token: bytes) -> None:
        self.address, self.token = address, token
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.broken = False

    def send(self, payload: Any, locked: bool = False) -> bool:
        """Send ``payload``; False if the channel cannot be reached (the caller keeps it)."""
        if self.broken:
            return False
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        with contextlib.nullcontext() if locked else self._lock:
            try:
                if self._sock is None:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self._sock = sock
                    sock.connect(self.address)
                    sock.sendall(_LENGTH.pack(len(self.token)) + self.token)
                self._sock.sendall(_LENGTH.pack(len(data)) + data)
                return True
            except OSError:
                self.close()
                return False

    def ask(self, payload: Any) -> bool:
        """Send ``payload`` and wait for the driver's yes or no; no if it cannot be reached."""
        with self._lock:
            if not self.send(payload, locked=True):
                return False
            try:
                self._sock.settimeout(_ANSWER_WITHIN_S)
                answer = self._sock.recv(1)
                self._sock.settimeout(None)
            except OSError:
                self.close()
                return False
            return answer == _YES

    def close(self) -> None:
        self.broken = True
        if self._sock is not None:
            self._sock.close()


# A worker keeps its connections to the channels of the last few runs; older ones are closed.
_OUTBOXES_KEPT = 8


_OUTBOXES: dict[str, _Outbox] = {}
_ACTIVE: set[_Batch] = set()
_LOCK = threading.Lock()
_WATCHER: list[threading.Thread] = []


class _Batch:
    """A batch running in this worker: what its tasks returned, and how much was sent already."""

    __slots__ = ("announced", "asks", "outbox", "outputs", "reports", "sent", "started")

    def __init__(self, outbox: _Outbox, asks: bool = False) -> None:
        self.outbox = outbox
        self.asks = asks
        self.outputs: list = []
        self.sent = 0
        self.started = time.monotonic()
        self.announced = False
        # Appended to by the batch's tasks, emptied by the watcher: a deque needs no lock for that.
        self.reports: collections.deque = collections.deque()

    def report(self, report: tuple) -> bool:
        """Pass on one report of a task; whether the driver said to stop the task."""
        if self.asks:
            return self.outbox.ask(("ask", report))
        self.reports.append(report)
        return False


def _watch(parent: int) -> None:
    """Send what batches running FLUSH_S or longer finished, and exit if the driver is gone."""
    while True:
        time.sleep(_TICK_S)
        if os.getppid() != parent:
            # The driver died (this process was re-parented): nobody will collect what runs here.
            os._exit(1)
        now = time.monotonic()
        with _LOCK:
            for batch in _ACTIVE:
                if batch.reports:
                    reports = [batch.reports.popleft() for _ in range(len(batch.reports))]
                    batch.outbox.send(("reports", reports))
            for batch in [b for b in _ACTIVE if now - b.started >= FLUSH_S]:
                if not batch.announced:
                    # Which process runs this long batch: a cancel ends this one, not the others.
                    batch.announced = batch.outbox.send(("busy", os.getpid()))
                ready = batch.outputs[batch.sent :]
                if ready and batch.outbox.send(("outputs", ready)):
                    batch.sent += len(ready)


def _start_watcher() -> None:
    with _LOCK:
        if _WATCHER and _WATCHER[0].is_alive():
            return
        thread = threading.Thread(
            target=_watch, args=(os.getppid(),), name="nbflow-worker-watch", daemon=True
        )
        thread.start()
        _WATCHER[:] = [thread]


def _outbox(address: str, token: bytes) -> _Outbox:
    with _LOCK:
        outbox = _OUTBOXES.get(address)
        if outbox is None or outbox.broken:
            outbox = _OUTBOXES[address] = _Outbox(address, token)
            while len(_OUTBOXES) > _OUTBOXES_KEPT:
                _OUTBOXES.pop(next(iter(_OUTBOXES))).close()
        return outbox


def run_batch_flushing(
    fn: Callable, batch: list[tuple], spec: tuple[str, bytes, int] | None
) -> tuple[list, float]:
    """Run ``batch`` in a worker; outputs a stall left waiting go through the channel ``spec`` early.

    Returns the outputs not sent yet, and how long the batch took.
    """
    started = time.perf_counter()
    if spec is None or spec[2] == os.getpid():
        # No channel, or not in a worker process (a cluster of threads in the driver itself).
        return [fn(*args) for args in batch], time.perf_counter() - started
    _start_watcher()
    outbox = _outbox(spec[0], spec[1])
    current = _Batch(outbox, asks=spec[3])
    with _LOCK:
        _ACTIVE.add(current)
    token = sending.set(current.report)
    try:
        for args in batch:
            output = fn(*args)
            with _LOCK:
                current.outputs.append(output)
    finally:
        sending.reset(token)
        with _LOCK:
            _ACTIVE.discard(current)
    return current.outputs[current.sent :], time.perf_counter() - started
