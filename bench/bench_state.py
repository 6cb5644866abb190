"""nbflow's `State` against Apache Burr's `burr.core.state.State`, side by side in one run.

For each implementation it times:

- ``update`` of one key on a 10-key and a 10,000-key state, both cycling
  through the keys (so that nbflow's delta fills up and folds into its base, as
  in real use) and setting the same key over and over;
- ``append`` to one list, 1,000, 10,000 and 100,000 times from empty, and 50
  times onto a list that already holds 100,000 items;
- ``state[key]`` reads on a 10,000-key state.

It prints microseconds per operation and the ratio Burr / nbflow (above 1 means
nbflow is faster). Run it with ``scripts/bench state``, which installs Burr in
``.venv-bench`` only.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from _common import best_us_per_op, format_ratio, format_table, format_us
from burr.core.state import State as BurrState

from nbflow import State as NbflowState

UPDATES = 10_000  # per run: at 10,000 keys that touches every key once and folds ~100 times
APPEND_COUNTS = (1_000, 10_000, 100_000)
LONG_LIST = 100_000
APPENDS_ONTO_LONG_LIST = 50
READ_PASSES = 20  # 20 passes over 10,000 keys: long enough a run for a stable per-read time
BURR_CAP_S = 30.0  # Burr's appends are quadratic: 100,000 of them would take about 20 minutes


@dataclass(frozen=True)
class Case:
    """One timed operation, run the same way on each implementation."""

    operation: str
    size: str
    setup: Callable[[type], Any]  # builds the starting state from a State class; not timed
    body: Callable[[Any], object]  # does `ops` operations on that state
    ops: int

    def time(self, state_cls: type) -> float:
        """Best microseconds per operation for ``state_cls``."""
        return best_us_per_op(lambda: self.setup(state_cls), self.body, self.ops)


def update_case(n_keys: int, *, same_key: bool) -> Case:
    keys = [f"k{i}" for i in range(n_keys)]
    # Built before timing, so that the timed loop is the update calls and nothing else.
    changes = [{keys[0] if same_key else keys[i % n_keys]: i} for i in range(UPDATES)]

    def body(state: Any) -> None:
        for change in changes:
            state = state.update(**change)

    operation = "update, same key" if same_key else "update, cycling keys"
    return Case(operation, f"{n_keys:,} keys", lambda cls: cls(dict.fromkeys(keys, 0)), body, UPDATES)


def append_case(count: int, *, onto: int = 0) -> Case:
    def setup(cls: type) -> Any:
        # extend() rather than a prebuilt list: it is how a long list ends up in a state in
        # real use, and it gives nbflow its growable list, so no first-append copy is timed.
        state = cls({"xs": []})
        return state.extend(xs=range(onto)) if onto else state

    def body(state: Any) -> None:
        for i in range(count):
            state = state.append(xs=i)

    size = f"{count:,} onto {onto:,}" if onto else f"{count:,} appends"
    return Case("append", size, setup, body, count)


def read_case(n_keys: int) -> Case:
    keys = [f"k{i}" for i in range(n_keys)]

    def body(state: Any) -> None:
        for _ in range(READ_PASSES):
            for key in keys:
                state[key]

    return Case(
        "state[key]", f"{n_keys:,} keys", lambda cls: cls(dict.fromkeys(keys, 0)), body, n_keys * READ_PASSES
    )


def run() -> tuple[list[list[str]], list[str]]:
    """Time every case on both implementations; returns the table rows and footnotes."""
    rows: list[list[str]] = []
    notes: list[str] = []

    def add(case: Case, nbflow_us: float, burr_us: float | None) -> None:
        ratio = "-" if burr_us is None else format_ratio(burr_us / nbflow_us)
        rows.append([case.operation, case.size, format_us(nbflow_us), format_us(burr_us), ratio])

    for n_keys in (10, 10_000):
        for same_key in (False, True):
            case = update_case(n_keys, same_key=same_key)
            add(case, case.time(NbflowState), case.time(BurrState))

    burr_last: tuple[int, float] | None = None  # (appends, seconds) of Burr's last append run
    for count in APPEND_COUNTS:
        case = append_case(count)
        nbflow_us = case.time(NbflowState)
        # Burr copies the whole list on every append, so its time grows with the square of count.
        projected_s = burr_last[1] * (count / burr_last[0]) ** 2 if burr_last else 0.0
        if projected_s > BURR_CAP_S:
            note = f"Burr's {count:,} appends skipped: about {projected_s:,.0f} s projected from its {burr_last[0]:,} (time grows with the square of the count), over the {BURR_CAP_S:.0f} s cap."
            notes.append(note)
            add(case, nbflow_us, None)
            continue
        burr_us = case.time(BurrState)
        burr_last = (count, burr_us * count / 1e6)
        add(case, nbflow_us, burr_us)

    case = append_case(APPENDS_ONTO_LONG_LIST, onto=LONG_LIST)
    add(case, case.time(NbflowState), case.time(BurrState))

    case = read_case(10_000)
    add(case, case.time(NbflowState), case.time(BurrState))
    return rows, notes


def main() -> None:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(
        f"State: nbflow {version('nbflow')} vs apache-burr {version('apache-burr')} on {python}; µs per operation, best of up to 5 runs",
        flush=True,
    )
    start = time.perf_counter()
    rows, notes = run()
    print(format_table(["operation", "size", "nbflow µs/op", "Burr µs/op", "Burr/nbflow"], rows))
    for note in notes:
        print(f"note: {note}")
    print(f"took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
