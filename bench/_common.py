"""Timing and table helpers shared by the `bench_*.py` scripts."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any


def best_us_per_op(
    setup: Callable[[], Any],
    body: Callable[[Any], object],
    ops: int,
    *,
    repeat: int = 5,
    budget_s: float = 1.0,
) -> float:
    """Time ``body(setup())`` and return the best run's microseconds per operation.

    Like `timeit.Timer.repeat`, this keeps the fastest of several runs (the one
    least disturbed by the rest of the machine) and switches the garbage
    collector off while timing. Unlike it, ``setup`` runs before every run, so
    each run starts from a fresh object, and repeating stops early once the runs
    have used ``budget_s``, so a slow case is timed fewer times instead of
    dominating the whole benchmark.

    Args:
        setup: Builds what one run works on; it is not timed.
        body: Does ``ops`` operations on what ``setup`` returned.
        ops: How many operations one call of ``body`` does.
        repeat: At most this many runs.
        budget_s: No new run starts once the runs so far took this many seconds.

    Returns:
        The fastest run's time divided by ``ops``, in microseconds.
    """
    best = float("inf")
    spent = 0.0
    for _ in range(repeat):
        subject = setup()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            body(subject)
            elapsed = time.perf_counter() - start
        finally:
            if gc_was_enabled:
                gc.enable()
        del subject
        best = min(best, elapsed)
        spent += elapsed
        if spent >= budget_s:
            break
    return best / ops * 1e6


def format_us(us: float | None) -> str:
    """Microseconds with about three significant digits, or ``-`` for a case that was not run."""
    if us is None:
        return "-"
    if us >= 100:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    if us >= 1:
        return f"{us:.2f}"
    return f"{us:.3f}"


def format_ratio(ratio: float) -> str:
    """A ratio such as ``1.6x`` or ``8,688x``: decimals only where they are significant."""
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.1f}x"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """A plain-text table: the first ``left`` columns left-aligned (labels), the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
