"""Dask and Ray executors: the same results as on one machine, shipping once, bounded, surviving a dead worker."""

import asyncio
import os
import signal
import time

import joblib
import pytest

import nbflow
from nbflow import (
    ApplicationBuilder,
    DaskExecutor,
    MapStates,
    MissingDependencyError,
    RayExecutor,
    Sweep,
    action,
    grid,
)
from nbflow.executors import Executor, JoblibExecutor, resolve_executor
from nbflow.parallel.shipping import SHARE_MIN_BYTES

EVERYWHERE = ["sequential", "threads", "processes", "dask", "ray"]
CLUSTERS = ["dask", "ray"]


# -- the work: module level, so that every executor's workers can import it -------------------


@action(reads=["x", "scale"], writes=["y", "pid"])
def scaled_square(state):
    if state["x"] == 3:
        raise ValueError("x=3 is unlucky")
    return state.update(y=state["scale"] * state["x"] ** 2, pid=os.getpid())


class SquareAll(MapStates):
    """Squares 0..n-1 times ``scale``; keeps (index, y, error) per task and the worker pids."""

    reads = ["n", "scale"]
    writes = ["rows", "pids"]

    def action(self):
        return scaled_square

    def states(self, state):
        for x in range(state["n"]):
            yield state.update(x=x)

    def reduce(self, state, states):
        rows, pids = [], set()
        for sub in states:
            error = f"{type(sub.task.error).__name__}: {sub.task.error}" if sub.task.error else None
            rows.append((sub.task.index, sub.get("y"), error))
            pids.add(sub.get("pid"))
        return state.update(rows=sorted(rows), pids=pids - {None})


def loss(lr, depth):
    if depth > 3:
        raise ValueError(f"depth {depth} is too deep")
    return {"loss": round((lr - 0.1) ** 2 + 0.01 * depth, 6)}


def reporting_loss(lr, depth):
    """Reports a curve, then fails where `loss` does: the curve is kept either way."""
    for epoch in range(3):
        nbflow.report(step=epoch, train_loss=lr * depth / (epoch + 1))
    return loss(lr, depth)


def square_app(executor, n=12):
    return (
        ApplicationBuilder()
        .with_actions(square_all=SquareAll(on_error="record"))
        .with_state(n=n, scale=10)
        .with_entrypoint("square_all")
        .with_executor(executor)
        .build()
    )


def assert_same_rows(df, expected):
    """Two sweep frames hold the same rows, leaving out the one column that varies run to run (durations)."""
    import pandas as pd

    pd.testing.assert_frame_equal(df.drop(columns=["duration_s"]), expected.drop(columns=["duration_s"]))


# -- one word changes where it runs, not what it computes ------------------------------------


def test_cluster_executors_resolve_from_their_names():
    """The string shortcuts "dask" and "ray" give the cluster executors."""
    pytest.importorskip("distributed")
    pytest.importorskip("ray")
    assert isinstance(resolve_executor("dask"), DaskExecutor)
    assert isinstance(resolve_executor("ray"), RayExecutor)


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", EVERYWHERE, indirect=True)
def test_map_states_gives_the_same_states_on_every_executor(executor_named):
    """The same MapStates application reduces the same sub-states, failures included, on every executor."""
    state = square_app(executor_named).run()[2]
    expected = [(x, 10 * x * x, None) for x in range(12)]
    expected[3] = (3, None, "ValueError: x=3 is unlucky")
    assert state["rows"] == expected


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", EVERYWHERE, indirect=True)
def test_sweep_gives_the_same_dataframe_on_every_executor(executor_named):
    """The same Sweep gives the same rows (parameters, outputs, status, errors) on every executor."""
    points = grid(lr=[0.01, 0.1, 1.0], depth=[1, 2, 4])
    df = Sweep(loss, points, executor=executor_named, progress=False).run()
    assert_same_rows(df, Sweep(loss, points, executor="sequential", progress=False).run())
    assert df["status"].tolist() == ["ok", "ok", "error"] * 3
    assert df.loc[2, "error"] == "ValueError: depth 4 is too deep"


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", EVERYWHERE, indirect=True)
def test_parallel_map_magic_gives_the_same_rows_on_every_executor(executor_named):
    """A %%parallel_map cell with --executor NAME gives the same DataFrame on every executor."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False  # its saving thread would outlive the test
    shell = InteractiveShell.instance(config=config)
    if "parallel_map" not in shell.magics_manager.magics["cell"]:
        shell.run_cell("%load_ext nbflow", store_history=False)
    # Only our names go: the namespace is also sys.modules["__main__"], whose __spec__ spawning needs.
    shell.user_ns["offset"] = 0.01
    cell = "loss = (lr - 0.1) ** 2 + offset * depth\n{'loss': round(loss, 6)}"
    try:
        df = shell.run_cell_magic(
            "parallel_map", f"--executor {executor_named} --no-progress lr=[0.01, 0.1] depth=[1, 2]", cell
        )
    finally:
        for name in ("offset", "results"):
            shell.user_ns.pop(name, None)
    assert df[["lr", "depth", "loss", "status"]].values.tolist() == [
        [0.01, 1, 0.0181, "ok"],
        [0.01, 2, 0.0281, "ok"],
        [0.1, 1, 0.01, "ok"],
        [0.1, 2, 0.02, "ok"],
    ]


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", CLUSTERS, indirect=True)
def test_cluster_executors_run_tasks_in_the_cluster_workers(executor_named):
    """Tasks run in the cluster's worker processes, not in the driver."""
    pids = square_app(executor_named, n=40).run()[2]["pids"]
    assert pids and os.getpid() not in pids


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", CLUSTERS, indirect=True)
def test_cluster_executors_run_under_arun(executor_named):
    """Under app.arun a cluster executor streams its results through the event-loop bridge."""
    state = asyncio.run(square_app(executor_named).arun())[2]
    assert [row[1] for row in state["rows"]] == [10 * x * x if x != 3 else None for x in range(12)]


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", CLUSTERS, indirect=True)
def test_parallel_action_executor_name_sends_its_tasks_to_the_cluster(executor_named):
    """A parallel action's own executor="dask" / "ray" wins over the application's threads."""
    app = (
        ApplicationBuilder()
        .with_actions(square_all=SquareAll(on_error="record", executor=executor_named))
        .with_state(n=20, scale=1)
        .with_entrypoint("square_all")
        .with_executor("threads")
        .build()
    )
    pids = app.run()[2]["pids"]
    assert pids and os.getpid() not in pids


@pytest.mark.cluster
def test_dask_workers_are_the_session_cluster_workers(dask_client):
    """With "dask" and no client given, tasks run on the default client's workers."""
    workers = set(dask_client.run(os.getpid).values())
    assert square_app("dask", n=40).run()[2]["pids"] <= workers


@pytest.mark.cluster
def test_joblib_dask_backend_still_works_through_parallel_config(dask_client):
    """Inside joblib.parallel_config(backend="dask"), the default executor runs joblib's dask backend."""
    with joblib.parallel_config(backend="dask"):
        executor = resolve_executor(None)
        assert type(executor) is JoblibExecutor
        assert sorted(executor.map_unordered(pow, [(x, 2) for x in range(5)])) == [0, 1, 4, 9, 16]


# -- at scale: shipping once, bounded in flight, streaming -----------------------------------


@action(reads=["x", "table"], writes=["seen"])
def look_up(state):
    table = state["table"]
    return state.update(seen=(os.getpid(), id(table), int(table[state["x"]])))


class LookUpAll(MapStates):
    """Every task reads the same large ``table`` from the parent state."""

    reads = ["n", "table"]
    writes = ["seen"]

    def action(self):
        return look_up

    def states(self, state):
        for x in range(state["n"]):
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(seen=sorted((sub["seen"] for sub in states), key=lambda seen: seen[2]))


@pytest.mark.cluster
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_cluster_executor_ships_a_large_state_value_once_per_worker(request, cluster):
    """A large value every task reads is shared once per step, and each worker holds one copy for all its tasks."""
    request.getfixturevalue({"dask": "dask_client", "ray": "ray_session"}[cluster])
    base = {"dask": DaskExecutor, "ray": RayExecutor}[cluster]
    shared = []

    class Counting(base):
        def share(self, value):
            shared.append(type(value).__name__)
            return super().share(value)

    table = list(range(200_000))  # 1.6 MB of list, far above the sharing threshold
    assert SHARE_MIN_BYTES < 1_000_000
    app = (
        ApplicationBuilder()
        .with_actions(look=LookUpAll())
        .with_state(n=300, table=table)
        .with_entrypoint("look")
        .with_executor(Counting())
        .build()
    )
    seen = app.run()[2]["seen"]
    assert [value for _, _, value in seen] == list(range(300))
    assert shared == ["list"]
    copies = {(pid, table_id) for pid, table_id, _ in seen}
    assert len(copies) == len({pid for pid, _ in copies})


class LocalSharing(Executor):
    """Runs calls in-process, swapping shared handles for their values as a cluster would."""

    ships_tasks = True
    shares_values = True

    def __init__(self):
        self.store = {}

    def share(self, value):
        handle = f"handle-{len(self.store)}"
        self.store[handle] = value
        return handle

    def _resolve(self, arg):
        if isinstance(arg, dict):
            return {k: self.store.get(v, v) if isinstance(v, str) else v for k, v in arg.items()}
        return self.store.get(arg, arg) if isinstance(arg, str) else arg

    def map_unordered(self, fn, items, *, lost=None):
        for args in items:
            yield fn(*(self._resolve(a) for a in args))


def test_executor_that_shares_values_gets_each_large_common_value_once():
    """Large parent-state values go through Executor.share once per step; small ones travel with each task."""
    executor = LocalSharing()
    table = list(range(200_000))
    app = (
        ApplicationBuilder()
        .with_actions(look=LookUpAll())
        .with_state(n=50, table=table)
        .with_entrypoint("look")
        .with_executor(executor)
        .build()
    )
    seen = app.run()[2]["seen"]
    assert [value for _, _, value in seen] == list(range(50))
    assert list(executor.store.values()) == [table]


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", CLUSTERS, indirect=True)
def test_cluster_executor_keeps_a_bounded_number_of_tasks_in_flight(executor_named):
    """Tasks are produced as results come back: never more than the batches in flight ahead of reduce."""
    produced = []
    ahead = []

    class Counted(SquareAll):
        def states(self, state):
            for sub in super().states(state):
                produced.append(1)
                yield sub

        def reduce(self, state, states):
            for done, _ in enumerate(states, start=1):
                ahead.append(len(produced) - done)
            return state.update(rows=[], pids=set())

    n = 10_000
    app = (
        ApplicationBuilder()
        .with_actions(square_all=Counted(on_error="record"))
        .with_state(n=n, scale=1)
        .with_entrypoint("square_all")
        .with_executor(executor_named)
        .build()
    )
    app.run()
    assert len(ahead) == n
    # At most the batches in flight (of at most 512 tasks each) and the one being made: the
    # bound is structural, so how fast the tasks are does not matter.
    bound = (resolve_executor(executor_named)._slots() + 1) * 512
    assert bound < n and max(ahead) <= bound


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", CLUSTERS, indirect=True)
def test_cluster_executor_reduce_that_stops_early_drops_the_rest(executor_named):
    """A reduce that returns after its first result leaves most tasks never produced."""
    produced = []

    class FirstOnly(SquareAll):
        def states(self, state):
            for sub in super().states(state):
                produced.append(1)
                yield sub

        def reduce(self, state, states):
            first = next(iter(states))
            return state.update(rows=[first.task.index], pids=set())

    app = (
        ApplicationBuilder()
        .with_actions(square_all=FirstOnly())
        .with_state(n=100_000, scale=1)
        .with_entrypoint("square_all")
        .with_executor(executor_named)
        .build()
    )
    assert len(app.run()[2]["rows"]) == 1
    assert len(produced) < 10_000


# -- a worker dies mid-sweep -----------------------------------------------------------------


def slow_square(x):
    """A point that takes a moment, so that a worker can be killed while the sweep runs."""
    time.sleep(0.02)
    return {"y": x * x}


@pytest.mark.cluster
def test_dask_killed_worker_mid_sweep_loses_no_point(tmp_path, spawnable_main, dask_offload_thread):
    """SIGKILL of a Dask worker process mid-sweep: its tasks are rescheduled and every row is ok and right."""
    distributed = pytest.importorskip("distributed")
    # A cluster of its own: killing a worker of the session's cluster would disturb the other tests.
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=":0", local_directory=tmp_path
    )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        pids = sorted(client.run(os.getpid).values())
        killed = []

        class KillAfterTen:
            """A progress bar that kills a worker when the tenth point is in."""

            def __init__(self, **options):
                self.done = 0

            def update(self, n):
                self.done += n
                if self.done == 10:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])

            def set_postfix(self, *values, **options):
                pass

            def close(self):
                pass

        executor = DaskExecutor(client)
        df = Sweep(slow_square, grid(x=range(200)), executor=executor, progress=KillAfterTen).run()
        assert killed and killed[0] not in client.run(os.getpid).values()
        assert df["status"].tolist() == ["ok"] * 200
        assert df["y"].tolist() == [x * x for x in range(200)]
    finally:
        client.close()
        cluster.close()


@pytest.fixture
def fragile_dask_client(tmp_path, monkeypatch, spawnable_main, dask_offload_thread):
    """A cluster of its own whose scheduler gives up on a task the first time its worker dies."""
    distributed = pytest.importorskip("distributed")
    import dask

    monkeypatch.setenv(MARKER_ENV, str(tmp_path / "crashed-once"))  # before the workers start
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=":0", local_directory=tmp_path
        )
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


MARKER_ENV = "NBFLOW_TEST_CRASH_MARKER"


def crash_once_on_five(x):
    """Point 5 kills its worker process the first time it runs, and works the second time."""
    marker = os.environ[MARKER_ENV]
    if x == 5 and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return {"y": x * x}


def crash_always_on_five(x):
    """Point 5 kills its worker process every time it runs."""
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"y": x * x}


@pytest.mark.cluster
def test_dask_batch_the_scheduler_gave_up_on_is_run_again_task_by_task(fragile_dask_client):
    """When Dask gives up on a batch whose worker died, each of its tasks runs again alone and succeeds."""
    executor = DaskExecutor(fragile_dask_client)
    df = Sweep(crash_once_on_five, grid(x=range(20)), executor=executor, progress=False).run()
    assert os.path.exists(os.environ[MARKER_ENV])
    assert df["status"].tolist() == ["ok"] * 20
    assert df["y"].tolist() == [x * x for x in range(20)]


@pytest.mark.cluster
def test_dask_task_that_kills_every_worker_it_touches_is_the_only_failed_row(fragile_dask_client):
    """A point that kills its worker alone too becomes an error row naming it; every other point is ok."""
    executor = DaskExecutor(fragile_dask_client)
    df = Sweep(crash_always_on_five, grid(x=range(20)), executor=executor, progress=False).run()
    assert df["status"].tolist() == ["ok"] * 5 + ["error"] + ["ok"] * 14
    assert "Task 5 of 'crash_always_on_five' (x=5) took its worker process down" in df.loc[5, "error"]
    assert df.loc[df["status"] == "ok", "y"].tolist() == [x * x for x in range(20) if x != 5]


# -- connecting and starting -----------------------------------------------------------------


def test_dask_executor_without_a_client_says_how_to_get_one(monkeypatch):
    """With no client anywhere, the error says how to make one or let nbflow start a LocalCluster."""
    distributed = pytest.importorskip("distributed")

    def no_client():
        raise ValueError("No global client found")

    monkeypatch.setattr(distributed, "get_client", no_client)
    with pytest.raises(MissingDependencyError) as info:
        list(DaskExecutor().map_unordered(pow, [(2, 3)]))
    message = str(info.value)
    assert "found no Dask client" in message and "Client(LocalCluster())" in message
    assert "local=True" in message


@pytest.mark.cluster
def test_dask_executor_local_starts_its_own_cluster_and_shutdown_stops_it(
    tmp_path, spawnable_main, dask_offload_thread
):
    """DaskExecutor(local=True) starts a LocalCluster on first use; shutdown() closes it and its workers."""
    executor = DaskExecutor(local=True, n_workers=1, threads_per_worker=1, local_directory=tmp_path)
    try:
        state = square_app(executor, n=5).run()[2]
        assert [row[1] for row in state["rows"]] == [0, 10, 40, None, 160]
    finally:
        executor.shutdown()
    assert executor.client is None


@pytest.mark.cluster
def test_dask_executor_connects_to_an_address_and_leaves_the_cluster_up(dask_client):
    """DaskExecutor(address=...) opens its own client to that scheduler; shutdown() closes only that client."""
    executor = DaskExecutor(address=dask_client.scheduler.address)
    try:
        assert square_app(executor, n=4).run()[2]["rows"][2] == (2, 40, None)
    finally:
        executor.shutdown()
    assert dask_client.status == "running"
    assert sum(dask_client.nthreads().values()) == 2


def test_cluster_executor_max_concurrency_is_checked():
    """Zero or a non-int is refused with what it takes."""
    with pytest.raises(ValueError, match=r"DaskExecutor\(max_concurrency=...\) takes a positive int"):
        DaskExecutor(max_concurrency=0)
    with pytest.raises(ValueError, match=r"RayExecutor\(max_concurrency=...\) takes a positive int"):
        RayExecutor(max_concurrency="2")


# -- stop means stop, on a cluster -------------------------------------------------------------


def hang_until_released(x, release):
    """Points from 3 on wait for the file ``release`` (a cluster worker shares no event with the test)."""
    if x >= 3:
        deadline = time.monotonic() + 120
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.05)
    return {"y": x * 10}


class _CancelAfter:
    """A progress stand-in that calls ``cancel`` from another thread once ``after`` points finished."""

    def __init__(self, after, cancel):
        self.after, self.cancel, self.thread, self.n = after, cancel, None, 0

    def __call__(self, total, desc, unit):
        return self

    def update(self, n):
        self.n += n
        if self.n == self.after and self.thread is None:
            import threading

            self.thread = threading.Thread(target=self.cancel)
            self.thread.start()

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", CLUSTERS, indirect=True)
def test_cluster_timeout_makes_a_hung_point_a_timeout_row(executor_named, tmp_path):
    """timeout=2 on a cluster: the two hung points are timeout rows, the three others ok."""
    import functools

    release = tmp_path / "release"
    try:
        target = functools.partial(hang_until_released, release=str(release))
        df = Sweep(target, grid(x=range(5)), executor=executor_named, timeout=2, progress=False).run()
    finally:
        release.touch()
    assert df["status"].tolist() == ["ok", "ok", "ok", "timeout", "timeout"]
    assert df["y"].tolist()[:3] == [0, 10, 20]


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", CLUSTERS, indirect=True)
def test_cluster_cancel_returns_promptly_with_hung_points(executor_named, tmp_path):
    """cancel() once the 3 quick points finished: run() returns within seconds, 3 ok and 2 cancelled."""
    import functools

    release = tmp_path / "release"
    s = Sweep(
        functools.partial(hang_until_released, release=str(release)),
        grid(x=range(5)),
        executor=executor_named,
        progress=None,
    )
    s.progress = _CancelAfter(3, s.cancel)
    started = time.monotonic()
    try:
        df = s.run()
    finally:
        release.touch()
        if s.progress.thread is not None:
            s.progress.thread.join()
    assert time.monotonic() - started < 30
    assert df["status"].tolist() == ["ok", "ok", "ok", "cancelled", "cancelled"]


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", CLUSTERS, indirect=True)
def test_report_from_cluster_workers_gives_the_same_curves_and_columns(executor_named):
    """Reports made in Dask and Ray workers come back with each point's result, failed points included."""
    points = grid(lr=[0.01, 0.1], depth=[1, 4])
    here = Sweep(reporting_loss, points, executor="threads", progress=False).run()
    there = Sweep(reporting_loss, points, executor=executor_named, progress=False).run()
    assert there["status"].tolist() == ["ok", "error", "ok", "error"]
    assert there["train_loss"].equals(here["train_loss"])
    assert there.nbflow.curves().equals(here.nbflow.curves())
    assert len(there.nbflow.curves()) == 12
