"""Tracking's cost: a 10,000-task map with a LocalTracker against the same map untracked (target <= 1.5x).

The tracker records every step of the parent and of each of the 10,000
sub-applications (one row each, with the keys written) into a SQLite file.
Apache Burr's local tracker, for context, measured 5.4x here writing three
files per task (from the issue; not rerun, it needs Burr's server package).
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time

from nbflow import ApplicationBuilder, LocalTracker, MapStates, MultiThreadedExecutor, action

sys.path.insert(0, os.path.dirname(__file__))
from _common import format_ratio, format_table

N = 10_000


@action(reads=["x"], writes=["y"])
def double(state):
    return state.update(y=state["x"] * 2)


class Doubles(MapStates):
    reads, writes = ["n"], ["total"]

    def action(self):
        return double

    def states(self, state):
        for i in range(state["n"]):
            yield state.update(x=i)

    def reduce(self, state, states):
        return state.update(total=sum(s["y"] for s in states))


def run(tracked: bool) -> float:
    builder = ApplicationBuilder().with_actions(m=Doubles()).with_state(n=N).with_entrypoint("m")
    builder = builder.with_executor(MultiThreadedExecutor(4))
    if tracked:
        builder = builder.with_tracker(LocalTracker("bench", storage_dir=tempfile.mkdtemp()))
    app = builder.build()
    gc.collect()
    started = time.perf_counter()
    total = app.run()[2]["total"]
    elapsed = time.perf_counter() - started
    assert total == N * (N - 1)
    return elapsed


def main() -> None:
    run(False), run(True)  # warm up: imports, thread pools, SQLite
    plain, tracked = [], []
    for _ in range(3):  # in turns, so both see the same machine noise
        plain.append(run(False))
        tracked.append(run(True))
    best_plain, best_tracked = min(plain), min(tracked)
    print(f"Tracking: a {N:,}-task MapStates on 4 threads, best of 3 runs taken in turns")
    rows = [
        ["untracked", f"{best_plain:.3f} s", f"{best_plain / N * 1e6:.1f}"],
        ["LocalTracker (SQLite)", f"{best_tracked:.3f} s", f"{best_tracked / N * 1e6:.1f}"],
    ]
    print(format_table(["run", "best", "µs/task"], rows))
    print(f"tracked / untracked: {format_ratio(best_tracked / best_plain)} (target <= 1.5x)")


if __name__ == "__main__":
    main()
