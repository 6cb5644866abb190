"""Faults around what nbflow keeps (issue: reliability): interrupted sweeps resume from their cache,
concurrent writers lose nothing, and read-only, full or corrupted storage fails with a clear error
and leaves what was saved intact."""

from __future__ import annotations

import _thread
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
import warnings
from pathlib import Path

import pandas as pd
import pytest

import nbflow.sweeps.export  # noqa: F401 (registers df.nbflow)
from nbflow import MultiProcessExecutor, SQLitePersister, Sweep, grid
from nbflow.core.state import State
from nbflow.errors import Interrupted, PersistenceError
from nbflow.sweeps.export import load_results

LOG_ENV = "NBFLOW_TEST_STORAGE_LOG"
INTERRUPT_ENV = "NBFLOW_TEST_INTERRUPT_AT"
# "<count> <path>": points past the count-th wait until the file at path exists (Ctrl-C was pressed).
HOLD_ENV = "NBFLOW_TEST_HOLD_AFTER"
_LOG_LOCK = threading.Lock()


def logged_square(x):
    """A point that takes a moment and logs that it ran; on threads, the point that logs the
    NBFLOW_TEST_INTERRUPT_AT-th line presses Ctrl-C (what a notebook's Interrupt does)."""
    log = os.environ[LOG_ENV]  # read first: a point that started in one run logs to that run's file
    time.sleep(0.02)
    with _LOG_LOCK:
        with open(log, "a") as f:
            f.write(f"{x}\n")
        with open(log) as f:
            logged = len(f.read().split())
    if logged == int(os.environ.get(INTERRUPT_ENV, "0")):
        _thread.interrupt_main()
    hold = os.environ.get(HOLD_ENV)
    if hold:
        count, pressed = hold.split(" ", 1)
        deadline = time.monotonic() + 60
        while logged > int(count) and not os.path.exists(pressed) and time.monotonic() < deadline:
            time.sleep(0.005)
    return {"y": x * x}


def _logged(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _loky_workers() -> list[int]:
    """Pids of this process's children that are loky worker processes (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"popen_loky" in cmdline:
            found.append(int(entry.name))
    return found


def _check_partial_frame(df: pd.DataFrame, n: int) -> tuple[set[int], set[int]]:
    """The interrupted frame has one row per point, each ok (with its right value) or cancelled."""
    assert len(df) == n and df["task_id"].tolist() == list(range(n))
    assert set(df["status"]) == {"ok", "cancelled"}
    ok = set(df.loc[df["status"] == "ok", "x"].tolist())
    cancelled = set(df.loc[df["status"] == "cancelled", "x"].tolist())
    assert len(ok) + len(cancelled) == n and not ok & cancelled
    assert all(df.loc[df["status"] == "ok", "y"] == df.loc[df["status"] == "ok", "x"] ** 2)
    return ok, cancelled


def _check_rerun(again: pd.DataFrame, n: int, ok: set[int], cancelled: set[int], ran: list[int]) -> None:
    """The re-run computes the cancelled points, each once, and loads every other point from the cache."""
    assert len(again) == n and again["task_id"].tolist() == list(range(n))
    assert again["y"].tolist() == [x * x for x in range(n)]
    computed = set(again.loc[again["status"] == "ok", "x"])
    cached = set(again.loc[again["status"] == "cached", "x"])
    assert sorted(ran) == sorted(computed) and computed | cached == set(range(n))
    assert ok <= cached and computed <= cancelled
    # A Ctrl-C that lands after a result was cached but before its row was added shows that one
    # point as cancelled, and the re-run loads it rather than computing it again. Only the one
    # result being handed to reduce can be in that window.
    assert len(cancelled - computed) <= 1


# -- Fault 2: Ctrl-C half-way through a sweep --------------------------------------------------------


def test_sweep_interrupted_on_threads_keeps_the_partial_frame_and_reruns_only_the_rest(tmp_path, monkeypatch):
    """Ctrl-C at the 10th of 20 points on threads: exc.results has ok + cancelled rows = 20; a cached re-run computes only cancelled points, each once."""
    n = 20
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    monkeypatch.setenv(LOG_ENV, str(first_log))
    monkeypatch.setenv(INTERRUPT_ENV, str(n // 2))
    with pytest.raises(Interrupted) as info:
        Sweep(
            logged_square, grid(x=range(n)), executor="threads", cache=tmp_path / "cache", progress=False
        ).run()
    df = info.value.results
    ok, cancelled = _check_partial_frame(df, n)
    ran_first = _logged(first_log)
    assert len(ran_first) >= n // 2 and len(set(ran_first)) == len(ran_first)
    assert ok <= set(ran_first) and cancelled  # every ok row was computed; the Ctrl-C cut the sweep short

    monkeypatch.setenv(LOG_ENV, str(second_log))
    monkeypatch.delenv(INTERRUPT_ENV)
    again = Sweep(
        logged_square, grid(x=range(n)), executor="threads", cache=tmp_path / "cache", progress=False
    ).run()
    _check_rerun(again, n, ok, cancelled, _logged(second_log))


def test_sweep_interrupted_on_processes_keeps_the_partial_frame_and_reruns_only_the_rest(
    tmp_path, monkeypatch, shutdown_processes
):
    """Ctrl-C once 20 of 40 points ran on processes: ok + cancelled = 40, no loky worker left, a cached re-run computes only cancelled points, each once."""
    n = 40
    log = tmp_path / "done.log"
    log.touch()
    pressed_flag = tmp_path / "pressed"
    monkeypatch.setenv(LOG_ENV, str(log))
    monkeypatch.delenv(INTERRUPT_ENV, raising=False)
    # Points past the 20th wait for the press: however slow the watcher is to see the 20th, the
    # sweep cannot finish before Ctrl-C lands.
    monkeypatch.setenv(HOLD_ENV, f"{n // 2} {pressed_flag}")
    pressed = threading.Event()

    def press_ctrl_c_at_half():
        deadline = time.monotonic() + 120
        while len(_logged(log)) < n // 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        pressed.set()
        # A real SIGINT, as a notebook's Interrupt sends: it wakes the main thread from waiting for
        # results. (_thread.interrupt_main() does not, so with every running point held it would
        # only be seen when a point's hold timed out.)
        os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=press_ctrl_c_at_half, name="press-ctrl-c")
    watcher.start()
    try:
        with pytest.raises(Interrupted) as info:
            Sweep(
                logged_square,
                grid(x=range(n)),
                executor="processes",
                cache=tmp_path / "cache",
                progress=False,
            ).run()
    finally:
        watcher.join()
    df = info.value.results
    assert pressed.is_set()
    ok, cancelled = _check_partial_frame(df, n)
    assert ok <= set(_logged(log)) and cancelled

    MultiProcessExecutor().shutdown()
    assert _loky_workers() == []
    assert [p for p in multiprocessing.active_children() if "Loky" in type(p).__name__] == []

    before = len(_logged(log))
    pressed_flag.touch()
    again = Sweep(
        logged_square, grid(x=range(n)), executor="processes", cache=tmp_path / "cache", progress=False
    ).run()
    _check_rerun(again, n, ok, cancelled, _logged(log)[before:])


# -- Fault 4: four processes writing to one SQLite file at once --------------------------------------

WRITERS, RECORDS_EACH = 4, 2_500


def save_records(path: str, writer: int, count: int) -> None:
    """One writer process: ``count`` steps of its own application, each saved in its own transaction."""
    persister = SQLitePersister(path)
    for i in range(count):
        persister.save(
            partition_key=None,
            app_id=f"writer-{writer}",
            sequence_id=i,
            position="step",
            state=State(writer=writer, i=i),
            status="completed",
        )
    persister.close()


def test_persister_four_processes_writing_at_once_lose_no_record(tmp_path, monkeypatch):
    """4 spawned processes save 2,500 steps each to one file at once: all 10,000 are there, per app in order."""
    # "spawn" prepares children from __main__; the IPython shells other tests start replace it with
    # a module that has no __spec__, which multiprocessing cannot describe. Give it a plain one.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    path = tmp_path / "runs.db"
    spawn = multiprocessing.get_context("spawn")
    writers = [
        spawn.Process(target=save_records, args=(str(path), w, RECORDS_EACH), name=f"writer-{w}")
        for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=300)
    assert [p.exitcode for p in writers] == [0] * WRITERS

    persister = SQLitePersister(path)
    assert persister.count() == WRITERS * RECORDS_EACH == 10_000
    assert sorted(persister.list_app_ids()) == [f"writer-{w}" for w in range(WRITERS)]
    for w in range(WRITERS):
        steps = persister.history(None, f"writer-{w}")
        assert [r.sequence_id for r in steps] == list(range(RECORDS_EACH))
        assert all(r.state["writer"] == w and r.state["i"] == r.sequence_id for r in steps)
    persister.close()


# -- Fault 5a: read-only storage --------------------------------------------------------------------


def _save_one(persister: SQLitePersister, sequence_id: int = 0) -> None:
    persister.save(
        partition_key=None,
        app_id="app",
        sequence_id=sequence_id,
        position="step",
        state=State(i=sequence_id),
        status="completed",
    )


def _read_only_folder(kind: str, tmp_path: Path) -> Path:
    if kind == "mode 0o500":
        if os.geteuid() == 0:
            pytest.skip("root ignores permission bits (CAP_DAC_OVERRIDE); the sysfs case covers root")
        folder = tmp_path / "locked"
        folder.mkdir(mode=0o500)
        return folder
    # sysfs holds only the attribute files the kernel makes: creating a file there fails with
    # EACCES even for root, so this folder is read-only whoever runs the tests.
    if not Path("/sys/kernel").is_dir():
        pytest.skip("needs Linux sysfs at /sys")
    return Path("/sys/kernel")


@pytest.mark.parametrize("kind", ["mode 0o500", "sysfs"])
def test_persister_in_read_only_folder_raises_naming_file_and_fix(kind, tmp_path):
    """Saving into a folder nobody may write to raises PersistenceError naming the file and the fix; no file appears."""
    path = _read_only_folder(kind, tmp_path) / "nbflow-test-runs.db"
    persister = SQLitePersister(path)
    with pytest.raises(PersistenceError) as info:
        _save_one(persister)
    message = str(info.value)
    assert f"SQLitePersister could not create {str(path)!r}" in message
    assert "Permission denied" in message
    assert "Check that the folder is writable, or choose another path." in message
    assert not path.exists()
    assert not path.with_name(path.name + "-wal").exists()


RO_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from nbflow import SQLitePersister
    from nbflow.core.state import State

    persister = SQLitePersister(sys.argv[1])
    try:
        persister.save(partition_key=None, app_id="app", sequence_id=99, position="step",
                       state=State(i=99), status="completed")
        print(json.dumps({"error": None}))
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    """
)


def _unshare_prefix() -> list[str]:
    """A command prefix that runs in a private mount namespace, or skip where that is not allowed."""
    command = ["unshare", "--user", "--map-root-user", "--mount"]
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare for a read-only bind mount")
    probe = subprocess.run([*command, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"unprivileged mount namespaces are not allowed here: {probe.stderr.strip()}")
    return command


def test_persister_on_read_only_mount_raises_and_changes_nothing(tmp_path):
    """A populated database on a read-only bind mount: saving raises PersistenceError naming file and fix; the 3 saved steps and the folder are unchanged."""
    prefix = _unshare_prefix()
    folder = tmp_path / "readonly"
    path = folder / "runs.db"
    persister = SQLitePersister(path)
    for i in range(3):
        _save_one(persister, i)
    persister.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    # The bind mount is made read-only inside a private mount namespace, so it exists only for
    # the child and vanishes with it: for root too, every write there fails with EROFS.
    script = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && exec {sys.executable} -c '{RO_SCRIPT}' {path}"
    done = subprocess.run(
        [*prefix, "sh", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout.strip().splitlines()[-1])["error"]
    assert error.startswith(f"PersistenceError: SQLitePersister could not open {str(path)!r}")
    assert "Check that the folder exists and is writable, or choose another path." in error
    assert sorted(p.name for p in folder.iterdir()) == ["runs.db"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    again = SQLitePersister(path)
    assert again.count() == 3 and [r.sequence_id for r in again.history(None, "app")] == [0, 1, 2]
    again.close()


# -- Fault 5b: a full disk, simulated with a file-size limit -----------------------------------------

LIMITED = textwrap.dedent(
    """
    import resource, signal, sys
    # Past the limit, write() fails with EFBIG instead of the process being killed by SIGXFSZ:
    # what a full disk looks like to the writer (ENOSPC differs only in the errno).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    """
)

FILL_PERSISTER = LIMITED + textwrap.dedent(
    """
    import json
    from nbflow import SQLitePersister
    from nbflow.core.state import State

    persister = SQLitePersister(sys.argv[2])
    saved = 0
    try:
        for i in range(100_000):
            persister.save(partition_key=None, app_id="app", sequence_id=i, position="step",
                           state=State(i=i, pad="x" * 1000), status="completed")
            saved += 1
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"saved": saved, "error": error}))
    """
)


def _run_limited(script: str, *args: object) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_persister_full_disk_raises_clearly_and_keeps_every_saved_step(tmp_path):
    """Saving until a 200 kB file limit: a PersistenceError naming the file, the cause and the fix; every step reported saved loads, the failing one is absent."""
    path = tmp_path / "runs.db"
    outcome = _run_limited(FILL_PERSISTER, 200_000, path)
    saved, error = outcome["saved"], outcome["error"]
    assert 0 < saved < 100_000
    assert error.startswith(f"PersistenceError: SQLitePersister could not save a step to {str(path)!r}")
    assert "The disk is full, or the file reached a size limit" in error
    assert "free some space or raise the limit" in error
    assert "What was being written was not saved" in error

    persister = SQLitePersister(path)  # no limit now
    assert persister.count() == saved
    steps = persister.history(None, "app")
    assert [r.sequence_id for r in steps] == list(range(saved))
    assert all(r.state["i"] == r.sequence_id and r.state["pad"] == "x" * 1000 for r in steps)
    assert persister.load(None, "app").sequence_id == saved - 1  # the failing step is not there
    persister.close()


EXPORT_UNDER_LIMIT = LIMITED + textwrap.dedent(
    """
    import json
    import pandas as pd
    import nbflow.sweeps.export

    rows, note = int(sys.argv[3]), int(sys.argv[4])
    df = pd.DataFrame({"x": range(rows), "name": [f"point-{i}" for i in range(rows)]})
    df.attrs["nbflow"] = {"note": "n" * note}
    try:
        df.nbflow.export(sys.argv[2])
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"error": error}))
    """
)

EXPORT_FORMATS = [
    ".csv",
    ".json",
    pytest.param(".parquet", marks=pytest.mark.skipif(
        __import__("importlib.util").util.find_spec("pyarrow") is None, reason="needs pyarrow (parquet extra)"
    )),
]  # fmt: skip


def _old_export(path: Path) -> pd.DataFrame:
    df = pd.DataFrame({"x": [1, 2, 3], "name": ["a", "b", "c"]})
    df.attrs["nbflow"] = {"note": "old"}
    df.nbflow.export(path)
    return df


def _assert_full_disk_message(error: str, what: str, kept: str) -> None:
    assert error.startswith(f"OSError: [Errno 27] Cannot export to {what}: File too large; "), error
    assert "the disk is full, or the file reached a size limit (a quota, or ulimit -f)" in error
    assert "Free some space or raise the limit, or export elsewhere" in error
    assert error.endswith(f"; {kept}.")


@pytest.mark.parametrize("suffix", EXPORT_FORMATS)
def test_export_full_disk_raises_clearly_and_keeps_the_old_file(suffix, tmp_path):
    """An export of 20,000 rows past a 20 kB file limit raises naming the file and the fix; the old 3-row file loads as before, no temporary file remains."""
    path = tmp_path / f"runs{suffix}"
    old = _old_export(path)
    files_before = sorted(p.name for p in tmp_path.iterdir())
    outcome = _run_limited(EXPORT_UNDER_LIMIT, 20_000, path, 20_000, 10)
    _assert_full_disk_message(outcome["error"], str(path), "the file already there is unchanged")
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before
    loaded = load_results(path)
    pd.testing.assert_frame_equal(loaded, old)
    assert loaded.attrs["nbflow"] == {"note": "old"}


@pytest.mark.parametrize("suffix", EXPORT_FORMATS)
def test_export_full_disk_leaves_no_file_where_there_was_none(suffix, tmp_path):
    """An export that hits the file limit leaves nothing at the target path, nor any temporary file."""
    path = tmp_path / f"runs{suffix}"
    outcome = _run_limited(EXPORT_UNDER_LIMIT, 20_000, path, 20_000, 10)
    _assert_full_disk_message(outcome["error"], str(path), "no file was left there")
    assert list(tmp_path.iterdir()) == []


def test_export_csv_whose_sidecar_hits_the_limit_keeps_the_old_pair(tmp_path):
    """A 5-row CSV fits under the limit but its 50 kB sidecar does not: the old CSV and sidecar both stay, and load without a checksum warning."""
    path = tmp_path / "runs.csv"
    old = _old_export(path)
    files_before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    outcome = _run_limited(EXPORT_UNDER_LIMIT, 20_000, path, 5, 50_000)
    what = f"{path} (its sidecar runs.csv.nbflow.json)"
    _assert_full_disk_message(outcome["error"], what, "the file already there is unchanged")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files_before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_results(path)
    pd.testing.assert_frame_equal(loaded, old)


# -- Fault 6: a corrupted database file ---------------------------------------------------------------

APPS, STEPS_EACH = 5, 40


def _populated(path: Path) -> None:
    persister = SQLitePersister(path)
    for i in range(APPS * STEPS_EACH):
        persister.save(
            partition_key=None,
            app_id=f"app-{i % APPS}",
            sequence_id=i // APPS,
            position="step",
            state=State(i=i, pad="p" * 300),
            status="completed",
        )
    persister.close()  # the last connection closes: the WAL is checkpointed into the file


def _overwrite_middle(path: Path, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(data)


DAMAGE = {
    "a page of 0xff in the middle": lambda p: _overwrite_middle(p, b"\xff" * 4096),
    "64 zero bytes in the middle": lambda p: _overwrite_middle(p, b"\x00" * 64),
    "truncated to half": lambda p: os.truncate(p, p.stat().st_size // 2),
    "truncated inside the header": lambda p: os.truncate(p, 50),
}


def _read_everything(persister: SQLitePersister) -> int:
    """Read every saved step back; returns how many there were."""
    return sum(len(persister.history(None, app)) for app in persister.list_app_ids())


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_persister_corrupted_file_raises_naming_file_and_fix(damage, tmp_path):
    """Reading back a damaged database raises PersistenceError naming the file and 'move it aside'."""
    path = tmp_path / "runs.db"
    _populated(path)
    assert _read_everything(SQLitePersister(path)) == APPS * STEPS_EACH
    DAMAGE[damage](path)
    persister = SQLitePersister(path)
    with pytest.raises(PersistenceError) as info:
        _read_everything(persister)
    message = str(info.value)
    assert str(path) in message
    assert "The file is damaged" in message and "move it aside and start a new one" in message
    persister.close()


LOAD_SCRIPT = textwrap.dedent(
    """
    import sys
    from nbflow import SQLitePersister

    persister = SQLitePersister(sys.argv[1])
    for app in persister.list_app_ids():
        persister.history(None, app)
    print("read everything")
    """
)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_persister_corrupted_file_fails_cleanly_in_a_fresh_process(damage, tmp_path):
    """A fresh interpreter reading a damaged database exits with status 1 and the PersistenceError on stderr, not a crash."""
    path = tmp_path / "runs.db"
    _populated(path)
    DAMAGE[damage](path)
    done = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, (done.returncode, done.stderr)  # an exception, not a signal
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("nbflow.errors.PersistenceError: SQLitePersister could not")
    assert str(path) in last and "move it aside and start a new one" in last
    assert "read everything" not in done.stdout
