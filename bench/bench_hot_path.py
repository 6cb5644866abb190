"""The sweep hot path: what a point costs in `sweep()` against the hand-written baseline, side by side.

Every row runs nbflow and its baseline in the same process run, in turns (A, B, A, B, ...), and
reports the median of the runs and the ratio of the medians:

1. default executor vs ``joblib.Parallel(n_jobs=2, backend="threading")`` + DataFrame, 100,000 trivial points
2. ``executor="sequential"`` vs a list comprehension + ``pd.DataFrame``, 100,000 trivial points
3. time per point at 100,000 and at 1,000,000 points (default executor): the scaling exponent
4. peak memory growth of a 300,000-point sweep over the final DataFrame's memory, per executor,
   each in a fresh child process: Python's allocations (tracemalloc), and the RSS for context
   (processes: 100,000 points, see the note it prints)
5. ``executor="processes"`` vs joblib loky ``n_jobs=2``, 20,000 trivial points
6. 20 ms CPU-bound points on processes: speedup over sequential, against loky's
7. fixed cost of a 10-point sweep after the first in the process
8. a fully cached re-run, and a cold run with a cache, against computing, 20,000 trivial points
9. a 10,000-task map with `LocalTracker` against the same map untracked

``NBFLOW_BENCH_QUICK=1`` divides the sizes by 10, for trying a change; the figures in the
README come from a full run.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import joblib
import pandas as pd

from nbflow import sweep

sys.path.insert(0, os.path.dirname(__file__))
from _common import format_ratio, format_table

QUICK = os.environ.get("NBFLOW_BENCH_QUICK") == "1"
SCALE = 10 if QUICK else 1
ROUNDS = 3


def trivial(x):
    return x


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


def timed(fn):
    gc.collect()
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def in_turns(contenders, rounds=ROUNDS):
    """Run each contender once per round, in turns; the median seconds of each, in order."""
    for fn in contenders:
        fn()  # warm: imports, pools, caches
    times = [[] for _ in contenders]
    for _ in range(rounds):
        for i, fn in enumerate(contenders):
            times[i].append(timed(fn)[0])
    return [statistics.median(t) for t in times]


def checked(frame, n, column="result"):
    assert len(frame) == n and (frame["status"] == "ok").all(), frame["status"].value_counts()
    assert frame[column].sum() == sum(range(n)), "a contender skipped work"
    return frame


# -- the rows ---------------------------------------------------------------------------------


def default_vs_joblib(n=100_000 // SCALE):
    def ours():
        return checked(sweep(trivial, {"x": range(n)}, progress=False), n)

    def joblib_threads():
        values = joblib.Parallel(n_jobs=2, backend="threading")(joblib.delayed(trivial)(x) for x in range(n))
        return checked(pd.DataFrame({"x": range(n), "result": values, "status": "ok"}), n)

    return in_turns([ours, joblib_threads])


def sequential_vs_comprehension(n=100_000 // SCALE):
    def ours():
        return checked(sweep(trivial, {"x": range(n)}, executor="sequential", progress=False), n)

    def comprehension():
        return checked(
            pd.DataFrame({"x": range(n), "result": [trivial(x) for x in range(n)], "status": "ok"}), n
        )

    return in_turns([ours, comprehension])


def scaling(small=100_000 // SCALE, large=1_000_000 // SCALE):
    def run(n):
        return lambda: checked(sweep(trivial, {"x": range(n)}, progress=False), n)

    t_small, t_large = in_turns([run(small), run(large)])
    import math

    exponent = math.log(t_large / t_small) / math.log(large / small)
    return t_small / small, t_large / large, exponent


_MEMORY_CHILD = """
import gc, json, resource, sys, tracemalloc
import nbflow
executor, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def trivial(x):
    return x
nbflow.sweep(trivial, {"x": range(10)}, executor=executor, progress=False)
gc.collect()
if mode == "traced":
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
else:
    before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
frame = nbflow.sweep(trivial, {"x": range(n)}, executor=executor, progress=False)
if mode == "traced":
    peak = tracemalloc.get_traced_memory()[1]
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
assert len(frame) == n and (frame["status"] == "ok").all()
print(json.dumps({"growth": peak - before, "frame": int(frame.memory_usage(deep=True).sum())}))
if executor == "processes":
    nbflow.MultiProcessExecutor().shutdown()
"""


def peak_memory(executor, n, mode="traced"):
    """Peak growth of one sweep over its frame's size, in a fresh child: Python's allocations
    (``traced``, tracemalloc) or the resident set (``rss``, which also counts what the allocator
    keeps after a free)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, executor, str(n), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return measured["growth"], measured["frame"]


def processes_vs_loky(n=20_000 // SCALE):
    def ours():
        return checked(sweep(trivial, {"x": range(n)}, executor="processes", progress=False), n)

    def loky():
        values = joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(trivial)(x) for x in range(n))
        return checked(pd.DataFrame({"x": range(n), "result": values, "status": "ok"}), n)

    return in_turns([ours, loky])


def cpu_bound_speedup(points=40):
    # Size the loop to ~20 ms on one core here.
    started = time.perf_counter()
    spin(2_000_000)
    n = int(2_000_000 * 0.020 / (time.perf_counter() - started))
    expected = spin(n) * points

    def frame_of(executor):
        frame = sweep(spin, {"n": [n] * points}, executor=executor, progress=False)
        assert (frame["status"] == "ok").all() and frame["result"].sum() == expected
        return frame

    def loky_par():
        return sum(joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(spin)(n) for _ in range(points)))

    def plain():
        return sum(spin(n) for _ in range(points))

    seq, par, loky, loop = in_turns(
        [lambda: frame_of("sequential"), lambda: frame_of("processes"), loky_par, plain]
    )
    return seq / par, loop / loky


def fixed_cost(runs=21):
    def ours(executor):
        return lambda: sweep(trivial, {"x": range(10)}, executor=executor, progress=False)

    def joblib_threads():
        values = joblib.Parallel(n_jobs=2, backend="threading")(joblib.delayed(trivial)(x) for x in range(10))
        return pd.DataFrame({"x": range(10), "result": values})

    return in_turns([ours(None), ours("sequential"), joblib_threads], rounds=runs)


def cached_rerun(n=20_000 // SCALE):
    directories = []

    def cold_cached():
        directories.append(tempfile.mkdtemp())
        return checked(sweep(trivial, {"x": range(n)}, cache=directories[-1], progress=False), n)

    warm = tempfile.mkdtemp()
    sweep(trivial, {"x": range(n)}, cache=warm, progress=False)

    def warm_cached():
        frame = sweep(trivial, {"x": range(n)}, cache=warm, progress=False)
        assert (frame["status"] == "cached").all() and frame["result"].sum() == sum(range(n))
        return frame

    def uncached():
        return checked(sweep(trivial, {"x": range(n)}, progress=False), n)

    return in_turns([uncached, warm_cached, cold_cached])


def tracked_map():
    import bench_tracking

    plain, tracked = in_turns([lambda: bench_tracking.run(False), lambda: bench_tracking.run(True)])
    return plain, tracked


# -- the report -------------------------------------------------------------------------------


class Report:
    """The table's rows: each a measurement, nbflow's figure, the baseline's, the ratio and the verdict."""

    def __init__(self):
        self.rows = []

    def add(self, label, ours, base, value, target, *, shown=None, at_least=False, unit="x"):
        """``value`` is compared with ``target`` (at most, or ``at_least``); ``shown`` is how the ratio prints."""
        if target is None:
            goal, verdict = "(context)", "context"
        else:
            ok = value >= target if at_least else value <= target
            miss = target / value if at_least else value / target
            goal = f"{'>=' if at_least else '<='} {target:g}{'' if at_least else unit}"
            verdict = "ok" if ok else f"MISSED by {miss:.2f}x" if miss < 1.1 else f"MISSED by {miss:.1f}x"
        self.rows.append([label, ours, base, shown or format_ratio(value), goal, verdict])


def per_point(seconds, n, digits=1):
    return f"{seconds / n * 1e6:.{digits}f} µs/pt"


def main() -> None:
    started = time.perf_counter()
    load = os.getloadavg()[0]
    report = Report()
    n = 100_000 // SCALE

    ours, base = default_vs_joblib()
    label = f"1. default executor vs joblib threading n_jobs=2, {n:,} pts"
    report.add(label, per_point(ours, n), per_point(base, n), ours / base, 1.0)
    ours, base = sequential_vs_comprehension()
    label = f"2. sequential vs list comprehension, {n:,} pts"
    report.add(label, per_point(ours, n), per_point(base, n, 2), ours / base, 4.0)
    small, large, exponent = scaling()
    label = f"3. µs/pt at {1_000_000 // SCALE:,} vs {n:,} pts (default)"
    shown = f"exp {exponent:.2f}"
    report.add(label, f"{large * 1e6:.1f}", f"{small * 1e6:.1f}", exponent, 1.02, shown=shown, unit="")

    memory_sizes = {"threads": 300_000, "sequential": 300_000, "async": 300_000, "processes": 100_000}
    for executor, size in memory_sizes.items():
        size //= SCALE
        growth, frame = peak_memory(executor, size)
        label = f"4. peak allocated / frame, {executor}, {size:,} pts"
        report.add(label, f"{growth / 2**20:.0f} MiB", f"{frame / 2**20:.0f} MiB", growth / frame, 1.5)
    size = memory_sizes["threads"] // SCALE
    growth, frame = peak_memory("threads", size, "rss")
    label = f"4. peak RSS growth / frame, threads, {size:,} pts"
    report.add(label, f"{growth / 2**20:.0f} MiB", f"{frame / 2**20:.0f} MiB", growth / frame, None)

    ours, base = processes_vs_loky()
    n = 20_000 // SCALE
    label = f"5. processes vs joblib loky n_jobs=2, {n:,} pts"
    report.add(label, per_point(ours, n, 0), per_point(base, n, 0), ours / base, 1.5)
    ours_speedup, loky_speedup = cpu_bound_speedup()
    label = "6. 20 ms CPU points: speedup on processes vs loky's"
    relative = ours_speedup / loky_speedup
    report.add(
        label,
        f"{ours_speedup:.2f}x",
        f"{loky_speedup:.2f}x",
        relative,
        0.95,
        shown=f"{relative:.2f}",
        at_least=True,
    )
    default, sequential, joblib_10 = fixed_cost()
    label = "7. fixed cost, 10-pt sweep, default executor"
    ms, ms_joblib = default * 1e3, joblib_10 * 1e3
    report.add(label, f"{ms:.1f} ms", f"{ms_joblib:.1f} ms", ms, 5, shown="-", unit=" ms")
    label = "7. fixed cost, 10-pt sweep, sequential"
    report.add(label, f"{sequential * 1e3:.1f} ms", "-", sequential * 1e3, 5, shown="-", unit=" ms")
    uncached, warm, cold = cached_rerun()
    label = f"8. fully cached re-run vs computing, {n:,} pts"
    report.add(label, f"{warm:.3f} s", f"{uncached:.3f} s", warm / uncached, 0.25)
    label = f"8. cold run with cache vs without, {n:,} pts"
    report.add(label, f"{cold:.3f} s", f"{uncached:.3f} s", cold / uncached, 1.3)
    plain, tracked = tracked_map()
    label = "9. 10,000-task map, LocalTracker vs untracked"
    report.add(label, f"{tracked:.3f} s", f"{plain:.3f} s", tracked / plain, 1.5)

    print(
        f"Sweep hot path: nbflow on CPython {sys.version.split()[0]}, pandas {pd.__version__}, joblib {joblib.__version__}, {os.cpu_count()} cores; medians of {ROUNDS} runs taken in turns"
    )
    print(format_table(["measurement", "nbflow", "baseline", "ratio", "target", "verdict"], report.rows))
    print(
        "note: 4. in a fresh child: the peak of Python's allocations during the sweep (tracemalloc), and for context the peak RSS (ru_maxrss) over the RSS before it, against the frame's memory_usage(deep=True); processes at 100,000 points to keep the run short, its workers' memory not counted."
    )
    print(
        "note: 7. the baseline column is hand-written joblib threading for 10 points, for context; 'default' is executor='threads'."
    )
    print(f"note: the 1-minute load average was {load:.2f} at start.")
    print(f"took {time.perf_counter() - started:.0f} s")
    from nbflow import MultiProcessExecutor

    MultiProcessExecutor().shutdown()


if __name__ == "__main__":
    main()
