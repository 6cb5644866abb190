"""Results that workers finish faster than reduce takes them wait in a bounded backlog, not in memory.

On processes, trivial tasks come back far faster than a reduce that does some work per result;
unbounded, 26,000 of 100,000 results waited in the driver at once (3x the frame's memory). The
pump waits for room in the driver's inbox, and joblib, which starts a batch whenever one
completes, is given its batches in rounds that pause while reduce is behind.
"""

from __future__ import annotations

import pytest

from nbflow import ApplicationBuilder, MapStates, Sweep, action, grid
from nbflow.parallel import running


@action(reads=["x"], writes=["y"])
def plus_one(state):
    return state.update(y=state["x"] + 1)


class SlowReduce(MapStates):
    """Spends a little CPU on each result, so the workers outrun it."""

    reads, writes = ["n"], ["total"]

    def action(self):
        return plus_one

    def states(self, state):
        for x in range(state["n"]):
            yield state.update(x=x)

    def reduce(self, state, states):
        total = 0
        for sub in states:
            total += sub["y"] + sum(range(300))  # ~10 us of work per result
        return state.update(total=total)


@pytest.fixture
def backlog_seen(monkeypatch):
    """Bound the backlog at 64, and record the most results that ever waited."""
    monkeypatch.setattr(running, "_BACKLOG", 64)
    seen = [0]
    real = running._Inbox.put_result

    def put_result(self, result):
        real(self, result)
        seen[0] = max(seen[0], self._backlog)

    monkeypatch.setattr(running._Inbox, "put_result", put_result)
    return seen


@pytest.mark.parametrize("executor", ["processes", "threads"])
def test_the_results_waiting_for_reduce_never_exceed_the_bound(executor, backlog_seen, shutdown_processes):
    n = 20_000
    app = (
        ApplicationBuilder()
        .with_actions(m=SlowReduce(executor=executor))
        .with_state(n=n)
        .with_entrypoint("m")
        .build()
    )
    assert app.run()[2]["total"] == sum(range(1, n + 1)) + n * sum(range(300))
    assert backlog_seen[0] <= 64


def test_a_bounded_backlog_loses_nothing_when_reduce_stops_early_or_a_sweep_is_cancelled(
    backlog_seen, shutdown_processes
):
    """The pump waiting for room must not hold the step up when the consumer stops taking results."""

    class FirstOnly(SlowReduce):
        def reduce(self, state, states):
            return state.update(total=next(iter(states))["y"])

    app = (
        ApplicationBuilder()
        .with_actions(m=FirstOnly(executor="processes"))
        .with_state(n=20_000)
        .with_entrypoint("m")
        .build()
    )
    assert app.run()[2]["total"] >= 1
    df = Sweep(lambda x: x, grid(x=range(5000)), executor="processes", progress=False).run()
    assert df["result"].tolist() == list(range(5000))


def _double(x):
    return 2 * x


def test_processes_pause_dispatch_for_a_slow_consumer_and_every_call_runs_once(
    monkeypatch, shutdown_processes
):
    """With room for few calls ahead, dispatch goes in rounds: each call's result comes exactly once."""
    from nbflow import MultiProcessExecutor

    executor = MultiProcessExecutor(2)
    monkeypatch.setattr(MultiProcessExecutor, "_ahead_limit", lambda self: 16)
    pulled = [0]

    def items():
        for x in range(3000):
            pulled[0] += 1
            yield (x,)

    taken, ahead = [], 0
    for result in executor.map_unordered(_double, items()):
        taken.append(result)
        ahead = max(ahead, pulled[0] - len(taken))
        sum(range(2000))  # a consumer slower than the workers
    assert sorted(taken) == [2 * x for x in range(3000)]
    # Started but not taken: the limit, the batch that crossed it, and the one made and held back.
    assert ahead <= 16 + 2 * 512
