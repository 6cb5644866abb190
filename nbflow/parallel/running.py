"""`StepRun`: one execution of a parallel step, from the tasks it makes to how it ends.

It produces the tasks (with their ids, cache lookups and resume identities), hands
them to the executor, and streams what finishes to ``reduce``. The executor's
results, what a stalled batch sends early through a `Channel`, a ``cancel()`` and
the end of the results all arrive in one inbox, so the consumer never waits on a
task that may never return:

- **cancel()** puts a stop in the inbox: the step stops taking results at once,
  keeps every result already received (and, on threads, every task a thread had
  finished), then aborts what still runs (worker processes are ended; a thread
  cannot be stopped, so a task on one is abandoned) and raises `TasksCancelled`.
- **Ctrl-C** does the same and raises `Interrupted`, a ``KeyboardInterrupt``.
- A hook of the action that raises (``tasks``, ``states``, ``actions``) stops the
  producing; what finished is reduced and `HookError` names the hook.

Only the consumer loop differs between the sync and the async API: ``stream`` gets
from the inbox, ``astream`` awaits it; everything else is shared.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import inspect
import itertools
import pickle
import queue
import signal
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from nbflow.core.actions import ApplicationContext
from nbflow.core.state import State, apply_changes
from nbflow.errors import (
    ActionReturnTypeError,
    HookContractError,
    HookError,
    Interrupted,
    RemoteTaskError,
    TaskFailed,
    TasksCancelled,
    WorkerCrashedError,
    summarize_exception,
)
from nbflow.fingerprint.memo import DigestMemo
from nbflow.parallel.attempts import Collect
from nbflow.parallel.channel import HEARD_WITHIN_S, Channel
from nbflow.parallel.executors import Executor
from nbflow.parallel.reporting import listen, unlisten
from nbflow.parallel.shipping import Packer, run_shipped
from nbflow.parallel.signatures import call_declared
from nbflow.parallel.tasks import (
    Outcome,
    PointInterrupted,
    SubGraphTask,
    TaskInfo,
    TaskState,
    arun_task,
    copied,
    run_task,
    task_app_id,
)
from nbflow.persistence.cache import as_cache

__all__ = ["StepRun", "HookRaised", "task_failed", "iterate_async", "HOOK_ARGS"]

HOOK_ARGS = {1: ("state",), 2: ("state", "context"), 3: ("state", "context", "inputs")}
_ABSENT = object()
# What the inbox holds: (kind, payload).
_RESULT, _END, _STOP = "result", "end", "stop"
# The producer made its last task (see StepRun.all_in).
_PRODUCED = "produced"
# The producer found a cached result for a step whose tasks wait on results.
_READY = "ready"
# The most results from the executor waiting for the consumer (about four batches of trivial tasks).
_BACKLOG = 2048
# After a cancel or Ctrl-C, how long to wait for in-flight thread tasks before abandoning them.
_SETTLE_S = 2.0
# Finished results are cached in batches of this many, or this often (a crash loses at most that).
_CACHE_BATCH, _CACHE_EVERY_S = 4096, 1.0
# Tasks are looked up in the cache in batches of at most this many, gathered for at most this long.
_LOOKUP_BATCH, _LOOKUP_WAIT_S = 256, 0.05


class HookRaised(Exception):
    """Carries a user hook's exception out of the task producer, with the hook's name."""

    def __init__(self, hook: str, error: BaseException) -> None:
        super().__init__(hook)
        self.hook, self.error = hook, error


class _Inbox:
    """Everything a running step receives, from any thread; read by one consumer, sync or async."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.queue: Any = asyncio.Queue() if loop is not None else queue.SimpleQueue()
        # Set by the pump once the executor has given every result.
        self.ended = False
        # Results the pump put in that the consumer has not taken: bounded, so that workers
        # faster than reduce fill neither memory nor the queue (see put_result).
        self._room = threading.Condition()
        self._backlog = 0
        self._closed = False

    def put_result(self, result: Any) -> None:
        """Put in a result from the executor, first waiting while _BACKLOG of them wait to be taken."""
        with self._room:
            while self._backlog >= _BACKLOG and not self._closed:
                self._room.wait()
            self._backlog += 1
        self.put((_RESULT, result))

    def took(self) -> None:
        """The consumer took a result: room for another."""
        with self._room:
            if self._backlog:
                self._backlog -= 1
                self._room.notify()

    def close(self) -> None:
        """The consumer takes no more: the pump must never wait for room again."""
        with self._room:
            self._closed = True
            self._room.notify_all()

    def get(self) -> tuple:
        return self.queue.get()

    def put(self, item: tuple) -> None:
        if self.loop is None:
            self.queue.put(item)
            return
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:
            pass  # the loop has closed: nobody is listening any more

    def take_all(self) -> list[tuple]:
        taken = []
        while True:
            try:
                taken.append(self.queue.get_nowait())
            except (queue.Empty, asyncio.QueueEmpty):
                return taken


class _Inline:
    """An inbox over an executor that runs tasks in the consumer's own thread (sequential)."""

    def __init__(self, results: Iterator[Any]) -> None:
        self.results = results

    def get(self) -> tuple:
        try:
            return (_RESULT, next(self.results))
        except StopIteration:
            return (_END, None)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            return (_END, exc)  # the executor's own failure, as a pump would report it

    def put(self, item: tuple) -> None:
        pass  # a stop is seen through the cancel event, between tasks

    # Results are taken as they are made, in the consumer's thread: no backlog to bound.
    def took(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take_all(self) -> list[tuple]:
        return []


class StepRun:
    """One execution of a parallel step: its tasks in flight, what finished, and how it ended.

    ``owner`` is the parallel action (a `nbflow.parallel.map.TaskBasedParallelAction`); this
    module reads its options and calls its hooks, and never imports it.
    """

    def __init__(
        self,
        owner: Any,
        state: State,
        context: ApplicationContext | None,
        inputs: dict,
        executor: Executor,
    ):
        self.owner = owner
        self.name = owner.name or type(owner).__name__
        self.state = state
        self.context = _for_sub_applications(owner, context)
        self.inputs = inputs
        self.executor = executor
        self.pending: dict[int, SubGraphTask] = {}
        self.cache = as_cache(owner.cache)
        self.cache_keys: dict[int, str] = {}
        # Digests of code and shared values, computed once per run (a global may change between runs).
        self.digests = DigestMemo()
        self.cache_salt = self.cache.salt() if self.cache is not None else None
        # Results waiting to be cached, written together (see flush_cache).
        # (task index, (key, written, label)) for each.
        self._uncached: list[tuple[int, tuple[str, dict, str]]] = []
        self._cached_at = time.monotonic()
        # With a persister, a task's id carries what it starts from, so a resumed run never
        # takes another point's saved result for its own.
        self.persisted = self.context is not None and self.context.persister is not None
        # Cached results, found while tasks are produced (possibly on an executor's thread).
        self.ready: collections.deque[TaskState] = collections.deque()
        self.produced = 0
        self.finished = 0
        # Whether the producer made its last task, and whether each task puts its own outcome in the
        # inbox (threads): then the step knows every result is in without waiting for the executor.
        self.production_done = False
        self.delivers_itself = False
        self.failure: tuple[SubGraphTask, Outcome] | None = None
        self.hook_failure: tuple[str, BaseException] | None = None
        self.interrupted = False
        self.cancel_requested = False
        # Set whenever the step stops taking results (done, failed, cancelled, reduce had enough),
        # so that tasks not yet started are skipped.
        self.cancel = threading.Event()
        self._inbox: Any = None
        self.stream_error: BaseException | None = None
        # Worker processes known to run this step's tasks (they said so through the channel).
        self.worker_pids: set[int] = set()
        self.settling = False
        # With owner.ordered: sub-states held back until those of every earlier task are out,
        # and the positions of tasks that will never come (dropped at a stop).
        self._held: dict[int, TaskState] = {}
        self._gaps: set[int] = set()
        self._next_out = 0
        # The finished sub-states, kept only for an owner whose reduce may fail (see HookError).
        self.delivered: list[TaskState] | None = [] if owner._keep_finished else None
        # An owner that hears reports as they are made gets them from tasks in this process
        # directly, and from worker processes through the channel.
        self.listen = listen(functools.partial(owner._heard_report, self)) if owner._hears_reports else None
        self.collect = Collect(owner.capture_output, self.listen)
        # A tracker that counts tasks (a live drawing's) hears of each one as its result comes in
        # here, whichever executor ran it; the sub-applications in worker processes cannot tell it.
        tracker = self.context.tracker if self.context is not None else None
        self._tell_finished = getattr(tracker, "task_finished", None)
        self._tell_total = getattr(tracker, "tasks_known", None)
        owner._control().add(self)

    def request_cancel(self) -> None:
        self.cancel_requested = True
        self.cancel.set()
        if self._inbox is not None:
            self._inbox.put((_STOP, None))

    def close(self) -> None:
        self.cancel.set()
        self.owner._control().discard(self)
        if self.listen is not None:
            unlisten(self.listen)
        if self.cache is not None:
            self.flush_cache()

    # -- producing tasks ---------------------------------------------------------------------

    def _tasks(self) -> Iterator[SubGraphTask]:
        yield from self._make_tasks()
        # Only an end that is not an error: an error must reach the stream through the pump.
        self.production_done = True
        if self._tell_total is not None and not self.cancel.is_set():
            # A stopped step's tasks ended early: their count is not its total.
            self._tell_total(parent=self.context, total=self.produced)
        if self._inbox is not None:
            self._inbox.put((_PRODUCED, None))

    def all_in(self) -> bool:
        """Every task made has delivered its outcome, and no more will be made.

        Only tasks that put their own outcome in the inbox can tell: other executors' results
        come through the pump, which then says so itself. Waiting for it costs joblib's poll of
        the results (10 ms), which for a short sweep is most of its time.
        """
        return self.delivers_itself and self.production_done and not self.pending

    def _make_tasks(self) -> Iterator[SubGraphTask]:
        """The tasks to run, in the order the hook makes them; with a cache, only those it lacks."""
        made = self._numbered()
        if self.cache is None:
            for task, _ in made:
                self.pending[task.index] = task
                yield task
            return
        # Looked up in the cache in batches, one query each: a query per task cost more than a
        # cheap task. They grow from one, so the first task starts at once, and a batch waits for
        # a slow tasks() hook no longer than _LOOKUP_WAIT_S. Tasks are gathered ahead only for an
        # action whose tasks() never waits on this step's results; others are looked up one by one.
        most = _LOOKUP_BATCH if self.owner._tasks_ahead and not self.owner._waits_on_results else 1
        batch: list[tuple[SubGraphTask, str]] = []
        size, since = 1, time.monotonic()
        try:
            for task, start in made:
                batch.append((task, start))
                if len(batch) >= size or time.monotonic() - since > _LOOKUP_WAIT_S:
                    yield from self._looked_up(batch)
                    batch, size, since = [], min(2 * size, most), time.monotonic()
        except HookContractError:
            yield from self._looked_up(batch)  # those made before the wrong item still run
            raise
        if not self.cancel.is_set():
            yield from self._looked_up(batch)

    def _numbered(self) -> Iterator[tuple[SubGraphTask, str | None]]:
        """Each task the hook makes, prepared, with the digest of what it starts from (if needed)."""
        ctx = self.context
        parent_id = ctx.app_id if ctx else "root"
        seq = ctx.sequence_id if ctx else 0
        try:
            given = call_declared(
                self.owner.tasks, HOOK_ARGS, state=self.state, context=ctx, inputs=self.inputs
            )
            produced = iterate_async(given) if inspect.isasyncgen(given) else iter(given or ())
        except Exception as exc:
            self.hook_failure = ("tasks", exc)
            return
        for position in itertools.count():
            if self.cancel.is_set():
                return
            try:
                task = next(produced)
            except StopIteration:
                return
            except HookContractError:
                raise  # nbflow's own check of what a hook gave
            except HookRaised as raised:
                self.hook_failure = (raised.hook, raised.error)
                return
            except Exception as exc:
                # The hook failed half-way: what it made so far runs, and the step then says why it stopped.
                self.hook_failure = ("tasks", exc)
                return
            if not isinstance(task, SubGraphTask):
                msg = f"{type(self.owner).__name__}.tasks() of {self.name!r} yielded {type(task).__name__} at position {position}; it must yield SubGraphTask(action=..., state=...) objects."
                raise HookContractError(msg)
            self.produced += 1
            yield task, self._prepare(task, position, parent_id, seq)

    def _prepare(self, task: SubGraphTask, position: int, parent_id: str, seq: int) -> str | None:
        """Number ``task`` and give it an id and its tracker; the digest of what it starts from, if needed."""
        task.index = position
        if task.tracker is None and self.context is not None:
            tracker = copied(self.context.tracker)
            if tracker is not self.context.tracker:
                task.tracker = tracker
        start = None
        if self.cache is not None:
            start = self.digests.task(task.graph.reads, task.inputs, task.state)
        elif self.persisted and task.application_id is None:
            start = self.digests.task(task.graph.reads, task.inputs, task.state, strict=False)
        if task.application_id is None:
            task.application_id = task_app_id(
                parent_id, seq, self.name, position, start if self.persisted else None
            )
        return start

    def code_key(self, graph: Any) -> str:
        """The code fingerprint of ``graph`` for this run."""
        return self.digests.code(graph)

    def _looked_up(self, tasks: list[tuple[SubGraphTask, str]]) -> Iterator[SubGraphTask]:
        """The tasks the cache does not hold, to run; the others' cached results go to ``ready``."""
        keys = [
            self.cache.task_key(self.code_key(task.graph), self.cache_salt, start) for task, start in tasks
        ]
        found = self.cache.get_many(keys)
        for (task, _), key in zip(tasks, keys, strict=True):
            written = found.get(key)
            if written is None:
                self.cache_keys[task.index] = key
                self.pending[task.index] = task
                yield task
            else:
                self.finished += 1
                info = _info(task, attempts=0, cached=True)
                sub = TaskState.of(task.state.update(**written), info)
                self.ready.append(sub)
                if self.owner._waits_on_results:
                    self.owner._settled(self, sub)
                    if self._inbox is not None:
                        # The consumer may be waiting for a result while the producer waits on
                        # this one: have it take what is ready.
                        self._inbox.put((_READY, None))

    def _to_cache(self, task: SubGraphTask, outcome: Outcome) -> None:
        key = self.cache_keys.pop(task.index, None)
        if key is None or outcome.error is not None:
            return
        written = {k: v for k, v in outcome.state._raw().items() if task.state.get(k, _ABSENT) is not v}
        self._uncached.append((task.index, (key, written, task.graph.name)))
        # A step whose tasks wait on results may make the same task again at once (a search
        # asking a point it asked before): it must find this one in the cache.
        if (
            len(self._uncached) >= _CACHE_BATCH
            or time.monotonic() - self._cached_at > _CACHE_EVERY_S
            or self.owner._waits_on_results
        ):
            self.flush_cache()

    def flush_cache(self) -> None:
        """Write the results not yet cached, in one transaction (at the latest when the step closes)."""
        entries, self._uncached = self._uncached, []
        self._cached_at = time.monotonic()
        if not entries:
            return
        try:
            failed = self.cache.put_many([entry for _, entry in entries])
        except Exception as exc:
            # The results are in hand; failing to cache them must not lose them.
            failed = [(position, exc) for position in range(len(entries))]
        for position, exc in failed:
            warnings.warn(f"Task {entries[position][0]} of {self.name!r} was not cached: {exc}", stacklevel=2)

    def _lost(self, args: tuple, error: BaseException) -> Outcome:
        """The result of a task whose worker process died twice while running it: a failure."""
        index = args[0]
        task = self.pending[index]
        msg = f"Task {index} of {self.name!r} ({task.describe()}) took its worker process down twice ({type(error).__name__}: {error}); it is recorded as failed and the other tasks went on. Look for a crash in native code, or memory use past the machine's limit."
        return Outcome(index, None, 2, 0.0, WorkerCrashedError(msg))

    def _calls(self, inbox: Any = None) -> tuple[Callable, Iterator[tuple]]:
        parent = self.context
        owner = self.owner
        if self.executor.ships_tasks:
            # Nested parallel actions inside a worker process run on threads there.
            shipped_parent = _replace_executor(parent, None)
            share = self.executor.share if self.executor.shares_values else None
            # What every task may carry from this step: its state and inputs (large ones are shared).
            common = itertools.chain(self.state._raw().values(), self.inputs.values()) if share else ()
            packer = Packer(
                self.name,
                shipped_parent,
                owner.retries,
                owner.retry_backoff_s,
                share,
                common,
                owner.timeout,
                self.digests.modules,
                self.collect,
            )
            return run_shipped, (packer.pack(t) for t in self._tasks())
        if self.executor.is_async:
            fn: Callable = arun_task
        elif inbox is not None and self.executor.shares_memory:
            # Each task hands its outcome over the moment it ends, not when its batch does: a
            # batch stuck behind a hung task would otherwise hold back the ones before it.
            fn = functools.partial(_delivering, inbox)
            self.delivers_itself = True
        else:
            fn = run_task
        options = (owner.retries, owner.retry_backoff_s, self.cancel, owner.timeout, self.collect)
        items = (
            (t.graph, t.state, t.inputs, t.application_id, t.index, t.context_for(parent), *options)
            for t in self._tasks()
        )
        return fn, items

    # -- receiving results -------------------------------------------------------------------

    def _open(self, loop: asyncio.AbstractEventLoop | None) -> tuple[Any, Any, Channel | None]:
        """Start the tasks: ``(inbox, pump, channel)``; results arrive in the inbox."""
        kwargs: dict[str, Any] = {}
        if self.executor.ships_tasks:
            # Worker processes can die; only executors that have them are asked to report it.
            kwargs["lost"] = self._lost
        if loop is None and self.executor.runs_inline:
            fn, items = self._calls()
            self._inbox = _Inline(self.executor.map_unordered(fn, items, **kwargs))
            return self._inbox, None, None
        inbox = self._inbox = _Inbox(loop)
        fn, items = self._calls(inbox)
        channel = None
        if self.executor.flushes_early:
            answer = self._answer if self.owner._stops_tasks else None
            channel = Channel(functools.partial(self._heard, inbox), answer)
            kwargs["channel"] = channel.spec
        asking = self.owner._waits_on_results
        if loop is not None and self.executor.is_async and not asking:
            pump: Any = asyncio.ensure_future(
                _pump_task(self.executor.amap_unordered(fn, items, **kwargs), inbox)
            )
        else:
            # Tasks that wait on results start as they are made: see _waits_on_results.
            mapper = self.executor.map_asking if asking else self.executor.map_unordered
            pump = threading.Thread(
                target=_pump_thread,
                args=(functools.partial(mapper, fn, items, **kwargs), inbox),
                name=f"nbflow-{self.executor.name}-results",
                daemon=True,
            )
            pump.start()
        return inbox, pump, channel

    def _answer(self, report: tuple) -> bool:
        """A worker's report, asked about: whether its task should stop there."""
        return bool(self.owner._heard_report(self, report))

    def _heard(self, inbox: Any, message: tuple) -> None:
        """A message from a worker through the channel: results a stalled batch finished, or its pid."""
        kind, payload = message
        if kind == "busy":
            self.worker_pids.add(payload)
        elif kind == "reports":
            for report in payload:
                try:
                    self.owner._heard_report(self, report)
                except Exception:
                    pass  # a report is for show; the channel's thread must go on delivering results
        else:
            for raw in payload:
                inbox.put((_RESULT, raw))

    def _take(self, item: tuple) -> tuple[list[TaskState], bool]:
        """What one inbox item gives ``reduce``, and whether to stop taking results."""
        kind, payload = item
        if kind == _END:
            if isinstance(payload, PointInterrupted):
                raise KeyboardInterrupt  # a task's own Ctrl-C, carried off an event loop
            if payload is not None:
                # Raised through reduce's loop, but not reduce's doing: `reduce_failed` lets it pass.
                self.stream_error = payload
                raise payload
            return self._in_order(self._ready(), last=True), True
        if kind == _STOP:
            return [], True
        accepted = None
        if kind == _RESULT:
            self._inbox.took()
            accepted = self._accept(payload)
        done = self.failure is not None or self.cancel_requested or self.all_in()
        # Taken after deciding: the producer queues its cache hits before it says it is done, so
        # once all_in() holds every hit is here (taken first, one could come in between, unseen).
        subs = self._ready()
        if accepted is not None:
            subs.append(accepted)
        return self._in_order(subs, last=done), done

    def _in_order(self, subs: list[TaskState], last: bool = False) -> list[TaskState]:
        """``subs`` as reduce should see them: as they came, or (ordered) in task order."""
        if self._tell_finished is not None:
            for sub in subs:
                self._tell_finished(parent=self.context, index=sub.task.index, ok=sub.task.error is None)
        if not self.owner.ordered:
            return subs
        for sub in subs:
            self._held[sub.task.index] = sub
        out = []
        while self._next_out in self._held or self._next_out in self._gaps:
            if self._next_out in self._held:
                out.append(self._held.pop(self._next_out))
            self._next_out += 1
        if last:
            out.extend(self._held.pop(i) for i in sorted(self._held))
        return out

    def _ready(self) -> list[TaskState]:
        subs = []
        while self.ready:
            subs.append(self.ready.popleft())
        return subs

    def _accept(self, raw: Any) -> TaskState | None:
        """The sub-state for ``reduce`` from one result; None to skip it. Sets ``failure`` to stop."""
        # Shipped tasks come back as (index, bytes) holding only the keys they changed.
        outcome: Outcome = raw if isinstance(raw, Outcome) else self._unpickle(*raw)
        task = self.pending.pop(outcome.index, None)
        if task is None or outcome.cancelled:
            if outcome.cancelled:
                self._gaps.add(outcome.index)
            return None  # already taken (sent early, then again), or never started
        if outcome.changes is not None:
            outcome.state = apply_changes(task.state, *outcome.changes)
        info = _info(
            task,
            attempts=outcome.attempts,
            duration_s=outcome.duration_s,
            error=outcome.error,
            traceback=outcome.traceback,
            resumed=outcome.resumed,
        )
        if self.cache is not None:
            self._to_cache(task, outcome)
        if (
            outcome.error is not None
            and self.owner.on_error == "raise"
            and not self.owner._reduce_sees_failures
        ):
            self.failure = (task, outcome)
            if self._tell_finished is not None:
                self._tell_finished(parent=self.context, index=task.index, ok=False)
            return None
        self.finished += 1
        sub = TaskState.of(outcome.state if outcome.state is not None else task.state, info)
        if self.delivered is not None:
            self.delivered.append(sub)
        if self.owner._waits_on_results:
            self.owner._settled(self, sub)
        return sub

    def _unpickle(self, index: int, blob: bytes) -> Outcome:
        try:
            return pickle.loads(blob)
        except Exception as exc:
            # The worker checks that its result loads again, so this is a rare case (a class that
            # exists in the worker only): the task becomes a failure rather than ending the step.
            task = self.pending.get(index)
            described = task.describe() if task is not None else "?"
            msg = f"Task {index} of {self.name!r} ({described}) finished in its worker, but its result could not be rebuilt here ({type(exc).__name__}: {exc}). Return plain values (numbers, strings, dicts, arrays) from the task, or use executor='threads'."
            return Outcome(
                index, None, 1, 0.0, RemoteTaskError(msg, type(exc).__name__, type(exc).__module__)
            )

    def _stopping_early(self) -> bool:
        return self.interrupted or self.cancel_requested

    def _stop_what_runs(self, pump: Any) -> None:
        """After a cancel or Ctrl-C: end what still runs, and wait a moment for what is finishing."""
        self.settling = True
        self.cancel.set()
        self._inbox.close()
        self.executor.abort(self.worker_pids)
        if isinstance(pump, threading.Thread):
            # A task that ignores being stopped (a hung thread) is abandoned after this.
            pump.join(_SETTLE_S)

    def _collect(self, inbox: Any) -> list[TaskState]:
        """Every result that came in, as sub-states for reduce."""
        subs = self._ready()
        for kind, payload in inbox.take_all():
            if kind == _RESULT:
                sub = self._accept(payload)
                if sub is not None:
                    subs.append(sub)
        return self._in_order(subs, last=True)

    def _wind_down(self, inbox: Any, pump: Any) -> None:
        """Whatever ended the stream: nothing new starts, and what still runs is stopped or let go."""
        self.cancel.set()
        inbox.close()
        if pump is None:
            inbox.results.close()
            return
        if self.settling:
            return  # _stop_what_runs did it
        if self.all_in() and self.failure is None:
            return  # nothing runs any more: the pump ends by itself as joblib notices
        if not inbox.ended:
            # Stopped before the executor was done (reduce had enough, a task failed): end its
            # workers if it can (threads it cannot).
            self.executor.abort(self.worker_pids)
        if isinstance(pump, threading.Thread):
            pump.join()

    def _catch_ctrl_c(self, inbox: Any) -> Callable[[], None]:
        """While tasks run elsewhere, make Ctrl-C a stop request; returns what puts things back.

        A KeyboardInterrupt raised wherever the main thread happens to be (in ``reduce``, say)
        would lose what ``reduce`` had made; a stop request lets the stream settle and ``reduce``
        finish with every result in hand. A second Ctrl-C raises at once, as usual.
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        try:
            previous = signal.getsignal(signal.SIGINT)
        except ValueError:
            return lambda: None
        if previous is not signal.default_int_handler:
            return lambda: None  # someone else's handler: leave it alone

        def on_ctrl_c(signum: int, frame: Any) -> None:
            if self.settling:
                return  # already stopping: the results that came in are being kept
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            self.cancel.set()
            inbox.put((_STOP, None))  # SimpleQueue.put may be called from a signal handler

        signal.signal(signal.SIGINT, on_ctrl_c)
        return lambda: signal.signal(signal.SIGINT, previous)

    def stream(self) -> Iterator[TaskState]:
        inbox, pump, channel = self._open(loop=None)
        restore = self._catch_ctrl_c(inbox) if pump is not None else (lambda: None)
        try:
            try:
                while True:
                    subs, done = self._take(inbox.get())
                    yield from subs
                    if done:
                        break
            except KeyboardInterrupt:
                self.interrupted = True
            if self._stopping_early():
                if channel is not None:
                    # Running batches send their pids (to be ended) and what they finished.
                    time.sleep(HEARD_WITHIN_S)
                self._stop_what_runs(pump)
                yield from self._collect(inbox)
        finally:
            self._wind_down(inbox, pump)
            if channel is not None:
                channel.close()
            restore()

    async def astream(self) -> AsyncIterator[TaskState]:
        inbox, pump, channel = self._open(loop=asyncio.get_running_loop())
        try:
            while True:
                subs, done = self._take(await inbox.queue.get())
                for sub in subs:
                    yield sub
                if done:
                    break
            if self._stopping_early():
                if channel is not None:
                    await asyncio.sleep(HEARD_WITHIN_S)
                await asyncio.to_thread(self._stop_what_runs, pump)
                for sub in self._collect(inbox):
                    yield sub
        finally:
            if isinstance(pump, asyncio.Future):
                self.cancel.set()
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
            else:
                await asyncio.to_thread(self._wind_down, inbox, pump)
            if channel is not None:
                channel.close()

    # -- how the step ends -------------------------------------------------------------------

    def finish(self, result: Any) -> State:
        if self.failure is not None:
            task, outcome = self.failure
            raise task_failed(
                self.name,
                task.index,
                task.describe(),
                outcome.error,
                outcome.traceback,
                self.finished,
                result,
            )
        if self.hook_failure is not None:
            hook, error = self.hook_failure
            kept = (
                f"; the {self.finished} task(s) that finished were reduced into exc.partial_state"
                if self.finished
                else ""
            )
            msg = f"{type(self.owner).__name__}.{hook}() of {self.name!r} raised {summarize_exception(error)} after making {self.produced} task(s){kept}. Fix {hook}(); the traceback above is where it failed."
            raise HookError(
                msg, partial_state=result if self.finished else None, finished=self.finished
            ) from error
        if self.interrupted:
            msg = f"Parallel action {self.name!r} was interrupted (Ctrl-C) after {self.finished} task(s) finished; tasks not yet started were dropped, and what reduce made of the finished ones is in exc.partial_state."
            raise Interrupted(msg, partial_state=result, finished=self.finished)
        if self.cancel_requested:
            msg = f"Parallel action {self.name!r} was cancelled by cancel() after {self.finished} task(s) finished; tasks not yet started were dropped, and what reduce made of the finished ones is in exc.partial_state."
            raise TasksCancelled(msg, partial_state=result, finished=self.finished)
        if not isinstance(result, State):
            msg = f"{type(self.owner).__name__}.reduce() of {self.name!r} returned {type(result).__name__}; it must return a State, e.g. `return state.update(results=...)`."
            raise ActionReturnTypeError(msg)
        return result

    def reduce_failed(self, error: BaseException) -> BaseException:
        """The error to raise when ``reduce`` itself raised ``error``."""
        if isinstance(error, KeyboardInterrupt):
            self.interrupted = True
            msg = f"Parallel action {self.name!r} was interrupted (Ctrl-C) inside reduce(), after {self.finished} task(s) finished; tasks not yet started were dropped."
            return Interrupted(msg, finished=self.finished)
        if (
            error is self.stream_error
            or isinstance(error, (TaskFailed, TasksCancelled, HookError))
            or not isinstance(error, Exception)
        ):
            return error
        kept = " They are in exc.finished_states." if self.delivered else ""
        msg = f"{type(self.owner).__name__}.reduce() of {self.name!r} raised {summarize_exception(error)} after {self.finished} task(s) finished.{kept} Fix reduce(); the traceback above is where it failed."
        wrapped = HookError(msg, finished=self.finished)
        wrapped.finished_states = self.delivered
        return wrapped


def _pump_thread(start: Callable[[], Iterator[Any]], inbox: _Inbox) -> None:
    try:
        results = start()
        try:
            for result in results:
                if result is not None:  # None: the task delivered its outcome itself
                    inbox.put_result(result)
        finally:
            results.close()
    except BaseException as exc:
        inbox.put((_END, exc))
        return
    inbox.ended = True
    inbox.put((_END, None))


async def _pump_task(results: Any, inbox: _Inbox) -> None:
    try:
        async for result in results:
            inbox.put((_RESULT, result))
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        inbox.put((_END, exc))
        return
    finally:
        await results.aclose()
    inbox.ended = True
    inbox.put((_END, None))


def iterate_async(agen: Any) -> Iterator[Any]:
    """The items of an async generator, for sync code on any thread (``async def tasks()`` that yields).

    It runs on an event loop of its own thread, at most a few items ahead of the reader.
    """
    handoff: queue.Queue = queue.Queue(maxsize=16)
    stop = threading.Event()

    def put(item: tuple) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    async def produce() -> None:
        try:
            async for item in agen:
                if not put((_RESULT, item)):
                    return
        except BaseException as exc:
            put((_END, exc))
            return
        finally:
            await agen.aclose()
        put((_END, None))

    thread = threading.Thread(target=asyncio.run, args=(produce(),), name="nbflow-async-tasks", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == _END:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        thread.join()


def task_failed(
    name: str,
    index: int,
    described: str,
    error: BaseException,
    traceback: str | None,
    finished: int,
    partial: Any,
) -> TaskFailed:
    """The `TaskFailed` that ends a step with ``on_error="raise"``, chained to the task's exception."""
    msg = f"Task {index} of {name!r} ({described}) raised {summarize_exception(error)}; {finished} finished result(s) were reduced into exc.partial_state. Pass on_error='record' to keep going past failures, or retries=N to retry them."
    exc = TaskFailed(msg, partial_state=partial, finished=finished, task_index=index)
    if traceback:
        exc.add_note(f"Traceback of task {index}:\n{traceback}")
    exc.__cause__ = error
    return exc


def _delivering(inbox: _Inbox, *args: Any) -> None:
    inbox.put((_RESULT, run_task(*args)))


def _info(task: SubGraphTask, **fields: Any) -> TaskInfo:
    return TaskInfo(
        index=task.index,
        application_id=task.application_id,
        action=task.graph.name,
        inputs=task.inputs,
        **{"duration_s": 0.0, **fields},
    )


def _for_sub_applications(owner: Any, context: ApplicationContext | None) -> ApplicationContext | None:
    """The parent context the tasks run under, with the action's persister and tracker choices."""
    if context is None:
        return None
    chosen = {}
    for option in ("persister", "tracker"):
        value = owner.resolve_option(option, context)
        if not (isinstance(value, str) and value == "cascade"):
            chosen[option] = value
    return dataclasses.replace(context, **chosen) if chosen else context


def _replace_executor(context: ApplicationContext | None, executor: Any) -> ApplicationContext | None:
    if context is None:
        return None
    return dataclasses.replace(context, executor=executor)
