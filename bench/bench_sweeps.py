"""Sweeps: the magic against Sweep, the progress bar's cost, building the DataFrame, peak memory.

Four measurements, each against its own baseline in this one run:

1. ``%%parallel_map`` against calling `Sweep` directly on the same 2,000 points (target <= 1.1x).
2. A 10,000-point sweep with its tqdm bar against the same sweep without one (target <= 1.05x).
3. `ResultTable` building the DataFrame of 100,000 results against
   ``pandas.DataFrame.from_records`` on the same row dicts (target <= 1.3x).
4. The peak memory a 100,000-point sweep allocates (tracemalloc) against the size of the
   DataFrame it returns (target <= 2x).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import sys
import time
import tracemalloc

import pandas as pd

from nbflow import ResultTable, Sweep, grid

sys.path.insert(0, os.path.dirname(__file__))
from _common import format_ratio, format_table


def point(x):
    return {"loss": x * 0.5, "acc": 1.0 / (1 + x)}


def best_of(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def magic_vs_sweep():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.run_cell("%load_ext nbflow", store_history=False)
    n = 2_000
    direct = best_of(lambda: Sweep(point, grid(x=range(n)), progress=False, executor="threads").run())
    magic = best_of(
        lambda: shell.run_cell_magic(
            "parallel_map", f"--no-progress x=range({n})", "{'loss': x * 0.5, 'acc': 1.0 / (1 + x)}"
        )
    )
    return direct, magic


def progress_cost():
    n = 10_000
    quiet = best_of(lambda: Sweep(point, grid(x=range(n)), progress=False, executor="threads").run())
    # The bar writes to stderr as in a terminal; send it to a buffer so the console is not the cost.
    with contextlib.redirect_stderr(io.StringIO()):
        shown = best_of(lambda: Sweep(point, grid(x=range(n)), progress=True, executor="threads").run())
    return quiet, shown


def dataframe_build():
    n = 100_000
    rows = [
        {
            "x": i,
            "loss": i * 0.5,
            "acc": 1.0 / (1 + i),
            "status": "ok",
            "error": None,
            "attempts": 1,
            "duration_s": 0.001,
            "task_id": i,
        }
        for i in range(n)
    ]

    # Both sides start from results already in hand; the loop that feeds ResultTable is the
    # sweep's own (one add per finished point), from_records takes the list at once.
    inputs = [({"x": r["x"]}, {"loss": r["loss"], "acc": r["acc"]}, r["task_id"]) for r in rows]

    def ours():
        table = ResultTable(["x"])
        add = table.add
        for params, outputs, task_id in inputs:
            add(params, outputs, status="ok", attempts=1, duration_s=0.001, task_id=task_id)
        return table.frame()

    def pandas_records():
        return pd.DataFrame.from_records(rows)

    return best_of(ours), best_of(pandas_records)


def peak_memory():
    n = 100_000
    sweep = Sweep(point, grid(x=range(n)), progress=False, executor="sequential")
    gc.collect()
    tracemalloc.start()
    baseline, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    frame = sweep.run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = int(frame.memory_usage(deep=True).sum())
    return peak - baseline, size


def main() -> None:
    started = time.perf_counter()
    direct, magic = magic_vs_sweep()
    quiet, shown = progress_cost()
    ours, records = dataframe_build()
    peak, size = peak_memory()
    print(f"Sweeps: nbflow on CPython {sys.version.split()[0]}, pandas {pd.__version__}; best of 3 runs")
    rows = [
        [
            "1. %%parallel_map vs Sweep, 2,000 points",
            f"{magic:.3f} s",
            f"{direct:.3f} s",
            format_ratio(magic / direct),
            "<= 1.1x",
        ],
        [
            "2. progress bar on vs off, 10,000 points",
            f"{shown:.3f} s",
            f"{quiet:.3f} s",
            format_ratio(shown / quiet),
            "<= 1.05x",
        ],
        [
            "3. ResultTable vs DataFrame.from_records, 100,000 rows",
            f"{ours:.3f} s",
            f"{records:.3f} s",
            format_ratio(ours / records),
            "<= 1.3x",
        ],
        [
            "4. peak allocated vs final DataFrame, 100,000 points",
            f"{peak / 2**20:.1f} MiB",
            f"{size / 2**20:.1f} MiB",
            format_ratio(peak / size),
            "<= 2x",
        ],
    ]
    print(format_table(["measurement", "nbflow", "baseline", "ratio", "target"], rows))
    print(
        "note: 4. counts every allocation during the sweep (tracemalloc), tasks' states included, against the returned frame's memory_usage(deep=True)."
    )
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
