"""Shared fixtures. The autouse check makes every test prove it leaves nothing running behind."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time

import pytest

from nbflow.parallel.daemon_threads import idle_threads

# Threads and child processes that a session-scoped fixture started (the Dask LocalCluster and
# the local Ray below): they outlive every test on purpose, so the leak check leaves them out.
# Only what started inside such a fixture is recorded (see `_owned_by_session`), so anything a
# test starts and leaves behind, on a cluster or not, is still reported.
_SESSION_THREADS: set[threading.Thread] = set()
_SESSION_PIDS: set[int] = set()


def _leftovers(threads_before: set[threading.Thread]) -> list[str]:
    # Idle threads of the async executor's pool hold no task, and end by themselves.
    idle = idle_threads()
    leaked = [
        f"thread {t.name!r}"
        for t in threading.enumerate()
        if t not in threads_before and t not in _SESSION_THREADS and t not in idle and t.is_alive()
    ]
    leaked += [
        f"process {p.name!r} (pid {p.pid})"
        for p in multiprocessing.active_children()
        if p.pid not in _SESSION_PIDS
    ]
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None:
        leaked += [f"progress bar {bar.desc!r}" for bar in list(getattr(tqdm.tqdm, "_instances", ()))]
    return leaked


@pytest.fixture(autouse=True)
def nothing_left_running():
    """Fail a test that leaves a thread, a child process or an open progress bar behind."""
    before = set(threading.enumerate())
    yield
    # Pools wind down asynchronously after shutdown; give them a moment before calling it a leak.
    deadline = time.monotonic() + 5
    while (leaked := _leftovers(before)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leaked, f"the test left running: {', '.join(leaked)}"


def pytest_configure(config):
    # Worker processes (loky) import test modules by name to unpickle module-level actions;
    # pytest puts the test folders on the parent's sys.path only, so pass them on.
    import os
    from pathlib import Path

    tests = Path(__file__).parent
    folders = [
        str(tests),
        *(str(p) for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
    ]
    os.environ["PYTHONPATH"] = os.pathsep.join([*folders, os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    # Every sweep records its run (nbflow.runs); the suite's thousands of sweeps, and the kernels
    # nbval starts, record into one throwaway store instead of .nbflow/ in the checkout.
    os.environ["NBFLOW_HOME"] = tempfile.mkdtemp(prefix="nbflow-home-")


EXECUTORS = ["sequential", "threads", "processes", "async"]


@pytest.fixture(params=EXECUTORS)
def executor_name(request):
    """Each executor name in turn; process pools are shut down afterwards so none outlives the test."""
    yield request.param
    if request.param == "processes":
        from nbflow import MultiProcessExecutor

        MultiProcessExecutor().shutdown()


@pytest.fixture
def executor_named(request):
    """Make the executor name in ``request.param`` usable: its cluster is up, its pools are stopped after."""
    name = request.param
    if name == "dask":
        request.getfixturevalue("dask_client")
    elif name == "ray":
        request.getfixturevalue("ray_session")
    yield name
    if name == "processes":
        from nbflow import MultiProcessExecutor

        MultiProcessExecutor().shutdown()


@pytest.fixture
def shutdown_processes():
    """Stop loky's reusable workers after a test that starts them."""
    yield
    from nbflow import MultiProcessExecutor

    MultiProcessExecutor().shutdown()


# -- one Dask cluster and one Ray for the whole session -----------------------------------------
# A Dask LocalCluster starts in about a second, but a local Ray takes 16-30 s here: the cluster
# tests share one of each, started on first use and stopped when the session ends.


@contextlib.contextmanager
def _owned_by_session():
    """Record the threads and child processes that start inside the block as the session's own."""
    threads = set(threading.enumerate())
    pids = {p.pid for p in multiprocessing.active_children()}
    try:
        yield
    finally:
        _SESSION_THREADS.update(t for t in threading.enumerate() if t not in threads)
        _SESSION_PIDS.update(p.pid for p in multiprocessing.active_children() if p.pid not in pids)


def _main_module_can_spawn() -> None:
    """Give ``__main__`` back the ``__spec__`` a test may have wiped, so that processes can be spawned.

    IPython's shell installs its namespace as ``sys.modules["__main__"]``, and a test that clears
    that namespace deletes the module's ``__spec__`` too; multiprocessing then fails to spawn a
    process (a Dask worker) with "module has no attribute '__spec__'".
    """
    main = sys.modules["__main__"]
    if not hasattr(main, "__spec__"):
        main.__spec__ = None


@pytest.fixture
def spawnable_main():
    """For a test that starts its own cluster: processes can be spawned (see `_main_module_can_spawn`)."""
    _main_module_can_spawn()


@pytest.fixture(scope="session")
def dask_offload_thread():
    """distributed's process-wide offload thread, which it starts on first use and keeps until exit.

    A scheduler in this process uses it for every graph it receives; started here, it counts as
    the session's rather than as a leak of the first test that starts a cluster.
    """
    pytest.importorskip("distributed")
    from distributed.utils import offload

    with _owned_by_session():
        asyncio.run(offload(int))


@pytest.fixture(scope="session")
def dask_client(tmp_path_factory, dask_offload_thread):
    """A Dask LocalCluster of two single-threaded worker processes; its client is the default one."""
    distributed = pytest.importorskip("distributed")
    _main_module_can_spawn()
    with _owned_by_session():
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=":0",  # its web server on a free port: 8787 may be taken
            local_directory=tmp_path_factory.mktemp("dask"),
        )
        client = distributed.Client(cluster)
        # distributed runs every future's done-callbacks on one thread it starts on first use and
        # keeps for good (a search's map_asking uses them): the session's, like the cluster.
        client.submit(int, 1).add_done_callback(lambda _: None)
        client.gather(client.submit(int, 2))
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with two CPUs, started once for the session (it takes 16-30 s)."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # On a busy 2-core machine the raylet can take longer to register than Ray's default 10 s.
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
    # Short, because Ray puts Unix sockets under it and their paths must fit in 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="nbray")
    with _owned_by_session():
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
