"""Stop, cancel and timeout at their edges: two sweeps at once, points that fight their deadline,
late finishers, retries after a stop, a second Ctrl-C, and async targets."""

import asyncio
import functools
import os
import signal
import threading
import time

import pytest

import nbflow
from nbflow import SQLitePersister, Sweep, grid, sweep

RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def _release():
    RELEASE.clear()
    yield
    RELEASE.set()


class Then:
    """A progress stand-in that calls ``then`` from another thread once ``after`` points finished."""

    def __init__(self, after, then):
        self.after, self.then, self.thread, self.n = after, then, None, 0

    def __call__(self, total, desc, unit):
        return self

    def update(self, n):
        self.n += n
        if self.n == self.after and self.thread is None:
            self.thread = threading.Thread(target=self.then)
            self.thread.start()

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass


def hang_from(x, k, seconds=60):
    if x >= k:
        RELEASE.wait(seconds)
    return {"y": x * 10}


def quick(x):
    time.sleep(0.05)
    return {"y": x}


def test_stop_cancelling_one_sweep_on_processes_leaves_another_running_one_whole(shutdown_processes):
    """Two sweeps on processes at once; cancelling the one with a hung point: the other finishes every point ok."""
    hung = Sweep(functools.partial(hang_from, k=2), grid(x=range(4)), executor="processes", progress=None)
    hung.progress = Then(2, hung.cancel)
    other_rows = []
    other = threading.Thread(
        target=lambda: other_rows.append(sweep(quick, {"x": range(40)}, executor="processes", progress=False))
    )
    other.start()
    df = hung.run()
    other.join(120)
    hung.progress.thread.join()
    assert df["status"].tolist() == ["ok", "ok", "cancelled", "cancelled"]
    assert other_rows and other_rows[0]["status"].tolist() == ["ok"] * 40
    assert other_rows[0]["y"].tolist() == list(range(40))


def just_at_the_deadline(x):
    time.sleep(0.01 * (0.9 + 0.2 * (x % 3) / 2))
    return x


def test_stop_timeout_leaves_no_alarm_handler_behind():
    """Many points ending right at their deadline: afterwards SIGALRM has its old handler, and timeouts still work."""
    sweep(just_at_the_deadline, {"x": range(300)}, executor="sequential", timeout=0.01, progress=False)
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
    again = sweep(
        functools.partial(hang_from, k=0, seconds=5),
        {"x": [1]},
        executor="sequential",
        timeout=0.2,
        progress=False,
    )
    assert again["status"].tolist() == ["timeout"] and "abandoned" not in again["error"].iloc[0]


def stubborn(x):
    """A point that swallows the stop its timeout sends, then returns late."""
    try:
        time.sleep(2)
    except BaseException:
        time.sleep(0.5)
    return x


@pytest.mark.parametrize("executor", ["sequential", "processes"])
def test_stop_a_point_that_defeats_its_timeout_is_still_a_timeout_row(executor, shutdown_processes):
    """Catching the stop and returning late is not `ok`: the row is `timeout`, and says so."""
    df = sweep(stubborn, {"x": [1]}, executor=executor, timeout=0.3, progress=False)
    assert df["status"].tolist() == ["timeout"] and "did not stop when told to" in df["error"].iloc[0]


def test_stop_a_point_abandoned_on_a_thread_is_not_resumed_as_finished(tmp_path):
    """A timed-out point left running on its thread finishes later; a resume still runs it, never shows it ok."""
    from nbflow import ApplicationBuilder

    persister = SQLitePersister(tmp_path / "runs.db")
    finished_late = threading.Event()

    def slow(x):
        if x == 1 and not finished_late.is_set():
            time.sleep(1)
            finished_late.set()
        return {"y": x}

    def app():
        s = Sweep(slow, {"x": [0, 1]}, executor="threads", timeout=0.2, on_error="raise", progress=False)
        return (
            ApplicationBuilder()
            .with_actions(s=s)
            .with_persister(persister)
            .initialize_from(persister, default_state={}, default_entrypoint="s")
            .with_identifiers(app_id="a")
            .build()
        )

    with pytest.raises(nbflow.TaskFailed):
        app().run()
    assert finished_late.wait(10)
    time.sleep(0.2)  # the abandoned thread has returned; had it saved, the resume below would load it
    df = app().run()[2]["results"]
    assert df["status"].tolist() == ["ok", "ok"] and df["attempts"].tolist()[1] == 1


def test_stop_cancel_on_threads_keeps_points_that_finish_while_it_settles():
    """Points that finish in the moment after cancel() (not hung, just running) come back ok."""

    def steady(x):
        time.sleep(0.3)
        return x

    s = Sweep(
        steady, {"x": range(4)}, executor=nbflow.MultiThreadedExecutor(max_concurrency=4), progress=False
    )
    timer = threading.Timer(0.1, s.cancel)
    timer.start()
    df = s.run()
    timer.join()
    assert df["status"].tolist() == ["ok"] * 4


def interrupts_itself(x):
    if x == 3:
        raise KeyboardInterrupt
    return x


@pytest.mark.parametrize("executor", ["sequential", "threads", "async"])
def test_stop_keyboard_interrupt_raised_in_a_point_stops_the_sweep(executor):
    """A point raising KeyboardInterrupt stops the sweep with Interrupted on every executor, async included."""
    with pytest.raises(nbflow.Interrupted) as info:
        sweep(interrupts_itself, {"x": range(6)}, executor=executor, progress=False)
    assert set(info.value.results["status"]) <= {"ok", "cancelled"}


def test_stop_cancel_during_a_backoff_ends_it_and_runs_no_retry():
    """cancel() while a failed point waits 20 s to retry: run() returns at once, and the retry never runs."""
    calls = []

    def flaky(x):
        calls.append(x)
        raise ConnectionError("down")

    s = Sweep(flaky, {"x": [1]}, executor="threads", retries=3, retry_backoff_s=20, progress=False)
    timer = threading.Timer(0.3, s.cancel)
    timer.start()
    started = time.monotonic()
    df = s.run()
    timer.join()
    assert time.monotonic() - started < 10
    assert calls == [1] and df["status"].tolist() == ["error"]


def test_stop_second_ctrl_c_while_settling_keeps_the_partial_frame():
    """Two Ctrl-C in a row: the second lands while the sweep settles, and the partial frame is kept."""

    def press_twice():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    s = Sweep(functools.partial(hang_from, k=2), grid(x=range(6)), executor="threads", progress=None)
    s.progress = Then(2, press_twice)
    with pytest.raises(nbflow.Interrupted) as info:
        s.run()
    s.progress.thread.join()
    assert info.value.results["status"].tolist() == ["ok", "ok"] + ["cancelled"] * 4


async def async_double(x):
    await asyncio.sleep(0.01)
    return {"y": x * 2}


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes", "async"])
def test_stop_async_def_target_is_awaited(executor, shutdown_processes):
    """An `async def` target gives its results, not coroutine objects, on every executor."""
    df = sweep(async_double, {"x": [1, 2]}, executor=executor, progress=False)
    assert df["y"].tolist() == [2, 4] and df["status"].tolist() == ["ok", "ok"]


def hang_and_say_where(x, marks):
    """Writes the pid of its worker to ``marks/<x>``, then hangs."""
    path = os.path.join(marks, str(x))
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(60)
    return x


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("phase", [0.0, 0.05, 0.1, 0.15])
def test_stop_cancel_as_a_point_starts_on_warm_workers_ends_its_worker(phase, tmp_path, shutdown_processes):
    """A cancel that comes as soon as a hung point started still ends the worker running it.

    A worker says which process runs a batch once the batch has run a while, on the beat of a
    watcher it started with its first batch. Warm workers, and a hung point started at another
    moment of that beat each time: the driver waits long enough after the stop to hear it.
    """
    # Two workers: with one, joblib runs the points in this process, not in a worker.
    executor = nbflow.MultiProcessExecutor(max_concurrency=2)
    sweep(quick, {"x": range(4)}, executor=executor, progress=False)
    time.sleep(phase)
    marks = str(tmp_path)
    s = Sweep(
        functools.partial(hang_and_say_where, marks=marks), grid(x=[0]), executor=executor, progress=False
    )

    def cancel_once_started():
        give_up = time.monotonic() + 60  # the point never started: the asserts below say so
        while not os.path.exists(os.path.join(marks, "0")) and time.monotonic() < give_up:
            time.sleep(0.005)
        s.cancel()

    canceller = threading.Thread(target=cancel_once_started)
    canceller.start()
    df = s.run()
    canceller.join()
    assert df["status"].tolist() == ["cancelled"]
    with open(os.path.join(marks, "0")) as f:
        pid = int(f.read())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"the worker {pid} running the hung point was left running"
