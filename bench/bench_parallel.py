"""nbflow's parallel layer against raw joblib, raw asyncio and Apache Burr 0.43, in one run.

Four benchmarks, each with the target nbflow should meet:

1. Overhead: 10,000 trivial tasks on 4 threads through nbflow `MapStates`, a
   hand-written ``joblib.Parallel(n_jobs=4, backend="threading")`` loop, and
   Burr's `MapStates` on a ``ThreadPoolExecutor(4)``. Each task reads one key
   and writes one; the reduce sums the outputs.
2. Async: 1,000 tasks that each ``await asyncio.sleep(0.05)``, under
   ``app.arun`` with ``AsyncExecutor(max_concurrency=100)``, against the ideal
   0.5 s (ten waves of 100); with a plain and with an async ``reduce``, and raw
   ``asyncio.gather`` behind a semaphore as the floor.
3. CPU-bound: 20 pure-Python loops of about 75 ms each on `MultiProcessExecutor`
   against `SequentialExecutor`; raw joblib loky shows what the machine's cores
   give at that moment (the ceiling).
4. Shipping: 200 busy loops of about 10 ms each on `MultiProcessExecutor`, with
   and without a 100 MB numpy array in the parent state that the map action
   does not read. For context, raw joblib loky over the same tasks without the
   array, and with it passed to every task as an argument, memmapping off
   (``max_nbytes=None``): run on fewer tasks and scaled up when it is too slow.

Each contender runs once untimed first (pool start-up, imports, caches: the
``first s`` column), then the contenders of a benchmark are timed in turns and
each one's best run is kept. It prints the figures, then the ratios next to
their targets. Run it with ``scripts/bench parallel``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import joblib
import numpy as np
from _common import format_ratio, format_table, format_us
from burr.core import ApplicationBuilder as BurrApplicationBuilder
from burr.core import State as BurrState
from burr.core import action as burr_action
from burr.core.parallelism import MapStates as BurrMapStates

from nbflow import (
    ApplicationBuilder,
    AsyncExecutor,
    MapStates,
    MultiProcessExecutor,
    MultiThreadedExecutor,
    SequentialExecutor,
    State,
    action,
)

TRIVIAL_TASKS = 10_000
THREADS = 4
ASYNC_TASKS = 1_000
ASYNC_SLEEP_S = 0.05
ASYNC_CONCURRENCY = 100
CPU_TASKS = 20
CPU_TASK_S = 0.075
SHIP_TASKS = 200
SHIP_TASK_S = 0.010
BIG_BYTES = 100_000_000
REPEAT = 3
BUDGET_S = 8.0  # no new round once a benchmark's timed runs took this long in all
SHIP_REPEAT = 7  # benchmark 4 compares ~1 s runs on both cores, the noisiest figures here
SHIP_BUDGET_S = 25.0
RAW_LOKY_BUDGET_S = 45.0  # raw joblib with the array: beyond this, run fewer tasks and scale up


# -- the work -----------------------------------------------------------------------------
# Module level, so that loky's workers receive them by value from __main__ (cloudpickle).


def spin(n: int) -> int:
    """A pure-Python loop that holds the GIL for its whole run: n additions."""
    total = 0
    for i in range(n):
        total += i
    return total


@action(reads=["x"], writes=["y"])
def add_one(state: State) -> State:
    return state.update(y=state["x"] + 1)


@action(reads=["x"], writes=["y"])
async def sleep_add_one(state: State) -> State:
    await asyncio.sleep(ASYNC_SLEEP_S)
    return state.update(y=state["x"] + 1)


@action(reads=["x"], writes=["y"])
def spin_x(state: State) -> State:
    """Spins ``state["x"]`` iterations; writes 1 so that the reduce counts the tasks."""
    spin(state["x"])
    return state.update(y=1)


class SumOver(MapStates):
    """Runs ``work`` with ``x`` set to each item of ``items`` and sums the ``y`` each writes."""

    reads = ["items"]
    writes = ["total"]

    def __init__(self, work: Any):
        super().__init__()
        self.work = work

    def action(self) -> Any:
        return self.work

    def states(self, state: State):
        for x in state["items"]:
            yield state.update(x=x)

    def reduce(self, state: State, states) -> State:
        return state.update(total=sum(s["y"] for s in states))


class AsyncSumOver(SumOver):
    """`SumOver` with an async reduce: under ``arun`` it consumes the results on the event loop."""

    async def reduce(self, state: State, states) -> State:
        total = 0
        async for sub in states:
            total += sub["y"]
        return state.update(total=total)


def nbflow_app(work: Any, items: list, executor: Any, fan: type[SumOver] = SumOver, **extra: Any):
    return (
        ApplicationBuilder()
        .with_actions(fan=fan(work))
        .with_state(items=items, **extra)
        .with_entrypoint("fan")
        .with_executor(executor)
        .build()
    )


def run_nbflow(app: Any) -> int:
    return app.run(halt_after=["fan"])[2]["total"]


def arun_nbflow(app: Any) -> int:
    return asyncio.run(app.arun(halt_after=["fan"]))[2]["total"]


def raw_add_one(task: dict) -> dict:
    return {"y": task["x"] + 1}


def raw_spin(big: Any, n: int) -> int:
    """The raw-joblib shipping task: receives the array (and ignores it), spins ``n`` times."""
    spin(n)
    return 1


@burr_action(reads=["x"], writes=["y"])
def burr_add_one(state: BurrState) -> BurrState:
    return state.update(y=state["x"] + 1)


class BurrSumOver(BurrMapStates):
    """Burr's twin of `SumOver` over `burr_add_one`."""

    def action(self, state: BurrState, inputs: dict) -> Any:
        return burr_add_one

    def states(self, state: BurrState, context: Any, inputs: dict):
        for x in state["items"]:
            yield state.update(x=x)

    def reduce(self, state: BurrState, states) -> BurrState:
        return state.update(total=sum(s["y"] for s in states))

    @property
    def reads(self) -> list[str]:
        return ["items"]

    @property
    def writes(self) -> list[str]:
        return ["total"]


def burr_app(items: list):
    # Burr 0.43 takes an executor *factory* (with_parallel_executor); each parallel step
    # enters it as a context manager, so the pool lives for one step.
    return (
        BurrApplicationBuilder()
        .with_actions(fan=BurrSumOver())
        .with_state(items=items)
        .with_entrypoint("fan")
        .with_parallel_executor(lambda: ThreadPoolExecutor(THREADS))
        .build()
    )


# -- timing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    """One way of doing a benchmark's work: ``body(setup())`` does all its tasks once."""

    label: str
    setup: Callable[[], Any]  # builds what one run works on (an application); not timed
    body: Callable[[Any], object]  # runs every task and returns the reduced total


@dataclass
class Timed:
    """One contender's figures: its untimed first run, its best and worst timed runs, in seconds."""

    label: str
    tasks: int
    first_s: float
    best_s: float = float("inf")
    worst_s: float = 0.0

    @property
    def us_per_task(self) -> float:
        return self.best_s / self.tasks * 1e6


def compare(
    contenders: list[Contender],
    tasks: int,
    expect: object,
    *,
    repeat: int = REPEAT,
    budget_s: float = BUDGET_S,
) -> list[Timed]:
    """Run each contender once untimed, then time them in turns and keep each one's best run.

    Taking turns, rather than timing one contender's runs and then the next's,
    puts every contender through the same spells of machine noise (this VM's
    second core comes and goes). Every run's result is checked against
    ``expect``, so that a contender that skips work cannot win. Repeating stops
    once a round has used ``budget_s`` in all.
    """
    figures = [Timed(c.label, tasks, _run(c, expect)) for c in contenders]
    spent = 0.0
    for _ in range(repeat):
        for contender, timed in zip(contenders, figures, strict=True):
            elapsed = _run(contender, expect)
            timed.best_s = min(timed.best_s, elapsed)
            timed.worst_s = max(timed.worst_s, elapsed)
            spent += elapsed
        if spent >= budget_s:
            break
    return figures


def _run(contender: Contender, expect: object) -> float:
    """Seconds for one run of ``contender``, garbage collector off as in `timeit`."""
    subject = contender.setup()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        got = contender.body(subject)
        elapsed = time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    if got != expect:
        msg = f"{contender.label}: wrong result, expected {expect!r}, got {got!r}"
        raise AssertionError(msg)
    return elapsed


def spins_per_s() -> float:
    """`spin` iterations per second on one core here (best of 5 short probes)."""
    probe = 500_000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        spin(probe)
        best = min(best, time.perf_counter() - start)
    return probe / best


# -- the four benchmarks ------------------------------------------------------------------


@dataclass
class Report:
    figures: list[list[str]] = field(default_factory=list)
    ratios: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, bench: str, figures: list[Timed]) -> dict[str, Timed]:
        for timed in figures:
            self.figures.append(
                [
                    bench,
                    timed.label,
                    f"{timed.tasks:,}",
                    f"{timed.first_s:.3f}",
                    f"{timed.best_s:.3f}",
                    f"{timed.worst_s:.3f}" if timed.worst_s else "-",
                    format_us(timed.us_per_task),
                ]
            )
        return {timed.label: timed for timed in figures}

    def ratio(self, name: str, value: float, target: str, met: bool | None) -> None:
        verdict = "context" if met is None else "ok" if met else "MISSED"
        self.ratios.append([name, format_ratio_fine(value), target, verdict])


def format_ratio_fine(ratio: float) -> str:
    """`format_ratio`, with two decimals below 10 (targets such as 1.1x need them)."""
    return format_ratio(ratio) if ratio >= 10 else f"{ratio:.2f}x"


def bench_overhead(report: Report) -> None:
    items = list(range(TRIVIAL_TASKS))
    threads = MultiThreadedExecutor(max_concurrency=THREADS)

    def raw(_: object) -> int:
        parallel = joblib.Parallel(n_jobs=THREADS, backend="threading")
        return sum(r["y"] for r in parallel(joblib.delayed(raw_add_one)({"x": x}) for x in items))

    contenders = [
        Contender("nbflow MapStates", lambda: nbflow_app(add_one, items, threads), run_nbflow),
        Contender("raw joblib threading", lambda: None, raw),
        Contender("Burr MapStates", lambda: burr_app(items), run_nbflow),
    ]
    bench = f"1. {TRIVIAL_TASKS:,} trivial tasks, {THREADS} threads"
    got = report.add(bench, compare(contenders, TRIVIAL_TASKS, sum(x + 1 for x in items)))
    nbflow, raw_joblib, burr = (got[c.label].best_s for c in contenders)
    report.ratio("1. nbflow / raw joblib", nbflow / raw_joblib, "<= 1.2x", nbflow / raw_joblib <= 1.2)
    report.ratio("1. Burr / nbflow", burr / nbflow, ">= 4x", burr / nbflow >= 4)


def bench_async(report: Report) -> None:
    items = list(range(ASYNC_TASKS))
    executor = AsyncExecutor(max_concurrency=ASYNC_CONCURRENCY)

    async def gather(_: object) -> int:
        limit = asyncio.Semaphore(ASYNC_CONCURRENCY)

        async def one(x: int) -> int:
            async with limit:
                await asyncio.sleep(ASYNC_SLEEP_S)
                return x + 1

        return sum(await asyncio.gather(*(one(x) for x in items)))

    contenders = [
        Contender(
            "nbflow arun, plain reduce", lambda: nbflow_app(sleep_add_one, items, executor), arun_nbflow
        ),
        Contender(
            "nbflow arun, async reduce",
            lambda: nbflow_app(sleep_add_one, items, executor, fan=AsyncSumOver),
            arun_nbflow,
        ),
        Contender("raw asyncio.gather + Semaphore", lambda: None, lambda _: asyncio.run(gather(None))),
    ]
    bench = f"2. {ASYNC_TASKS:,} x sleep({ASYNC_SLEEP_S}), {ASYNC_CONCURRENCY} at once"
    got = report.add(bench, compare(contenders, ASYNC_TASKS, sum(x + 1 for x in items)))
    ideal = ASYNC_TASKS / ASYNC_CONCURRENCY * ASYNC_SLEEP_S
    plain, in_loop, floor = (got[c.label].best_s / ideal for c in contenders)
    report.ratio(f"2. nbflow, plain reduce / ideal {ideal:.1f} s", plain, "<= 1.1x", plain <= 1.1)
    report.ratio(f"2. nbflow, async reduce / ideal {ideal:.1f} s", in_loop, "<= 1.1x", in_loop <= 1.1)
    report.ratio(f"2. raw asyncio / ideal {ideal:.1f} s", floor, "(floor)", None)


def bench_cpu(report: Report, per_s: float) -> None:
    n = round(per_s * CPU_TASK_S)
    items = [n] * CPU_TASKS
    processes = MultiProcessExecutor()
    workers = joblib.cpu_count()

    def raw(_: object) -> int:
        parallel = joblib.Parallel(n_jobs=workers, backend="loky")
        return sum(parallel(joblib.delayed(raw_spin)(None, x) for x in items))

    contenders = [
        Contender(
            "nbflow SequentialExecutor", lambda: nbflow_app(spin_x, items, SequentialExecutor()), run_nbflow
        ),
        Contender(
            f"nbflow MultiProcessExecutor ({workers})",
            lambda: nbflow_app(spin_x, items, processes),
            run_nbflow,
        ),
        Contender(f"raw joblib loky ({workers})", lambda: None, raw),
    ]
    bench = f"3. {CPU_TASKS} x {CPU_TASK_S * 1e3:.0f} ms pure-Python loop"
    got = report.add(bench, compare(contenders, CPU_TASKS, CPU_TASKS))
    sequential, nbflow, raw_joblib = (got[c.label].best_s for c in contenders)
    report.ratio(
        "3. nbflow sequential / processes", sequential / nbflow, ">= 1.7x", sequential / nbflow >= 1.7
    )
    report.ratio("3. nbflow sequential / raw joblib loky", sequential / raw_joblib, "(ceiling)", None)
    report.ratio("3. nbflow processes / raw joblib loky", nbflow / raw_joblib, "(overhead)", None)
    if sequential / raw_joblib < 1.7:
        report.notes.append(
            f"3. raw joblib got only {sequential / raw_joblib:.2f}x out of the {workers} cores as well: something else was using them, so the processes figures say little. Rerun on a quiet machine."
        )


def bench_shipping(report: Report, per_s: float) -> None:
    n = round(per_s * SHIP_TASK_S)
    items = [n] * SHIP_TASKS
    processes = MultiProcessExecutor()
    workers = joblib.cpu_count()
    big = np.ones(BIG_BYTES // 8)
    mb = f"{BIG_BYTES // 1_000_000} MB"

    def raw(count: int, payload: Any) -> Callable[[object], int]:
        def body(_: object) -> int:
            parallel = joblib.Parallel(n_jobs=workers, backend="loky", max_nbytes=None)
            return sum(parallel(joblib.delayed(raw_spin)(payload, n) for _ in range(count)))

        return body

    contenders = [
        Contender("nbflow, no array", lambda: nbflow_app(spin_x, items, processes), run_nbflow),
        Contender(
            f"nbflow, {mb} array unread", lambda: nbflow_app(spin_x, items, processes, big=big), run_nbflow
        ),
        Contender("raw joblib loky, no array", lambda: None, raw(SHIP_TASKS, None)),
    ]
    bench = f"4. {SHIP_TASKS} x {SHIP_TASK_S * 1e3:.0f} ms busy loop, processes"
    figures = compare(contenders, SHIP_TASKS, SHIP_TASKS, repeat=SHIP_REPEAT, budget_s=SHIP_BUDGET_S)
    without, with_big, raw_without = (t.best_s for t in figures)

    # Raw joblib with the array as an argument, memmapping off: every task pickles 100 MB.
    # Too slow for best-of-N; a probe says how many tasks fit the budget, the time is scaled up.
    probe = 2 * workers
    probe_s = _run(Contender("probe", lambda: None, raw(probe, big)), probe)
    count = SHIP_TASKS
    if probe_s / probe * SHIP_TASKS > RAW_LOKY_BUDGET_S:
        count = max(probe, int(RAW_LOKY_BUDGET_S / 3 / (probe_s / probe)) // workers * workers)
    raw_big_s = _run(Contender("raw big", lambda: None, raw(count, big)), count) * SHIP_TASKS / count
    label = f"raw joblib loky, {mb} array as argument"
    if count < SHIP_TASKS:
        label += " *"
        report.notes.append(
            f"4. * ran {count} of the {SHIP_TASKS} tasks once (a {probe}-task probe took {probe_s / probe:.2f} s a task) and scaled the time by {SHIP_TASKS}/{count}; its 'first s' is the same scaled run."
        )
    figures.append(Timed(label, SHIP_TASKS, raw_big_s, raw_big_s))  # one run: no worst
    report.add(bench, figures)
    report.ratio("4. nbflow with array / without", with_big / without, "<= 1.2x", with_big / without <= 1.2)
    report.ratio("4. raw joblib with array / without", raw_big_s / raw_without, "(context)", None)
    report.ratio("4. raw joblib with array / nbflow with", raw_big_s / with_big, "(context)", None)


def main() -> None:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(
        f"Parallel: nbflow {version('nbflow')} vs joblib {joblib.__version__} and apache-burr {version('apache-burr')} on {python}, {joblib.cpu_count()} cores; seconds, best of up to {REPEAT} runs ({SHIP_REPEAT} in 4.) taken in turns after one untimed run",
        flush=True,
    )
    start = time.perf_counter()
    report = Report()
    load = os.getloadavg()[0]
    if load >= 0.5:
        report.notes.append(
            f"the 1-minute load average was {load:.2f} at start: other processes were using the cores, which skews the multi-core figures (3. and 4.) most."
        )
    per_s = spins_per_s()
    report.notes.append(
        f"3./4. the work is `spin(n)`, a pure-Python loop that holds the GIL (not time.sleep, so that only processes overlap it): {per_s / 1e6:.1f} M iterations/s on one core here, measured at start to size the tasks."
    )
    try:
        bench_overhead(report)
        bench_async(report)
        bench_cpu(report, per_s)
        bench_shipping(report, per_s)
    finally:
        MultiProcessExecutor().shutdown()
    header = ["benchmark", "contender", "tasks", "first s", "best s", "worst s", "µs/task (best)"]
    print(format_table(header, report.figures, left=2))
    print()
    print(format_table(["ratio", "value", "target", "verdict"], report.ratios))
    for note in report.notes:
        print(f"note: {note}")
    print(f"took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
