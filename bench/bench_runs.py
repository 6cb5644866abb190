"""Run history: what recording a sweep in the run store costs, against the same sweep unrecorded.

Every sweep now writes its frame as a Parquet file and one row of a SQLite index when it ends.
Side by side in one run, each round timing ``record=True`` and ``record=False`` in turn (a fresh
store per round), medians over the rounds:

1. a 100,000-point sweep of a trivial function on threads (target: recording adds <= 5%);
2. a 10-point sweep (target: recording adds <= 50 ms), after one warm-up round;
3. where the time goes: `RunStore.write` alone on a built 100,000-row frame, and the file's size;
4. the one-off cost the first recorded sweep of a session pays: importing pyarrow's Parquet
   module, timed in a fresh interpreter.

Run it with ``scripts/bench runs`` (about 2 minutes).
"""

from __future__ import annotations

import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import format_table

import nbflow
from nbflow.sweeps.provenance import new_run_id
from nbflow.sweeps.run_store import RunStore

QUIET = {"progress": False, "live": False, "executor": "threads"}


def point(x):
    return {"loss": x * 0.5, "acc": 1.0 / (1 + x)}


def timed_sweep(n: int, record: bool) -> float:
    store = tempfile.mkdtemp(prefix="nbflow-bench-runs-")
    try:
        gc.collect()
        started = time.perf_counter()
        nbflow.sweep(point, {"x": range(n)}, record=record, store=store, **QUIET)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(store)


def interleaved(n: int, rounds: int) -> tuple[float, float]:
    on, off = [], []
    for i in range(rounds):
        # Alternate which goes first, so neither always runs on a cooler machine.
        for record in (True, False) if i % 2 == 0 else (False, True):
            (on if record else off).append(timed_sweep(n, record))
    return statistics.median(on), statistics.median(off)


def write_alone(rounds: int) -> tuple[float, int]:
    store = Path(tempfile.mkdtemp(prefix="nbflow-bench-runs-"))
    try:
        frame = nbflow.sweep(point, {"x": range(100_000)}, store=store, **QUIET)
        runs_store = RunStore(store)
        times = []
        for _ in range(rounds):
            frame.attrs["nbflow"]["run_id"] = new_run_id()
            gc.collect()
            started = time.perf_counter()
            runs_store.write(frame, name="bench", kind="sweep", status="complete")
            times.append(time.perf_counter() - started)
        size = (store / f"{frame.attrs['nbflow']['run_id']}.parquet").stat().st_size
        return statistics.median(times), size
    finally:
        shutil.rmtree(store)


def cold_import() -> float:
    code = "import time; t = time.perf_counter(); import pyarrow.parquet; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    return statistics.median(times)


def main() -> None:
    started = time.perf_counter()
    print(f"Run history: nbflow on CPython {sys.version.split()[0]}; medians of interleaved rounds")
    timed_sweep(10, True)  # warm-up: imports, the thread pool, the first Parquet write
    big_on, big_off = interleaved(100_000, 5)
    small_on, small_off = interleaved(10, 30)
    write_s, size = write_alone(5)
    cold = cold_import()
    rows = [
        [
            "100,000-point sweep (5 rounds)",
            f"{big_on:.2f} s",
            f"{big_off:.2f} s",
            f"{(big_on - big_off) * 1000:+.0f} ms",
            f"{big_on / big_off:.3f}x",
            "<= 1.05x",
            "met" if big_on / big_off <= 1.05 else "MISSED",
        ],
        [
            "10-point sweep (30 rounds)",
            f"{small_on * 1000:.1f} ms",
            f"{small_off * 1000:.1f} ms",
            f"{(small_on - small_off) * 1000:+.1f} ms",
            f"{small_on / small_off:.2f}x",
            "<= +50 ms",
            "met" if small_on - small_off <= 0.050 else "MISSED",
        ],
        [
            "RunStore.write alone, 100,000 rows",
            f"{write_s * 1000:.0f} ms",
            "",
            f"{size / 1e6:.2f} MB file",
            "",
            "",
            "",
        ],
        [
            "import pyarrow.parquet, fresh interpreter (once per session)",
            f"{cold * 1000:.0f} ms",
            "",
            "",
            "",
            "",
            "",
        ],
    ]
    print(format_table(["case", "recorded", "not recorded", "difference", "ratio", "target", ""], rows))
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
