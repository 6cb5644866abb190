"""A new SQLite file opened by many threads or processes at once is set up once, without a lock error.

Tasks on threads each open their own connection to a persister's file when they start, so the
first tasks of a run all open a file that does not exist yet at the same moment. SQLite answers
a connection that asks for WAL mode while another is opening the file with "database is locked"
at once, without waiting for its busy timeout, and that failed a whole step.
"""

from __future__ import annotations

import multiprocessing
import threading

from nbflow.persistence.sqlite_file import SQLiteFile

_SCHEMA = "CREATE TABLE IF NOT EXISTS things (k TEXT PRIMARY KEY, v TEXT);"


def _open_and_write(path: str, name: str, barrier) -> str:
    barrier.wait()
    file = SQLiteFile(path, _SCHEMA, owner="test")
    file.connection().execute("INSERT INTO things VALUES (?, ?)", (name, "x"))
    return name


def test_many_threads_open_one_file_at_once(tmp_path):
    """As the first tasks of a persisted step do, while the step's own connection is open."""
    for attempt in range(60):
        path = str(tmp_path / f"new-{attempt}.db")
        if attempt % 2:
            SQLiteFile(path, _SCHEMA, owner="test").connection()  # the driver's, already in WAL mode
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def worker(
            name: str, path: str = path, barrier: threading.Barrier = barrier, errors: list = errors
        ) -> None:
            try:
                _open_and_write(path, name, barrier)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        rows = SQLiteFile(path, _SCHEMA, owner="test").connection().execute("SELECT count(*) FROM things")
        assert rows.fetchone()[0] == 8


def _in_process(args: tuple) -> str:
    path, name, barrier = args
    return _open_and_write(path, name, barrier)


def test_many_processes_open_one_new_file_at_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(4) as pool:
        for attempt in range(5):
            path = str(tmp_path / f"new-{attempt}.db")
            barrier = manager.Barrier(4)
            names = pool.map(_in_process, [(path, f"p{i}", barrier) for i in range(4)])
            assert sorted(names) == ["p0", "p1", "p2", "p3"]
            rows = SQLiteFile(path, _SCHEMA, owner="test").connection().execute("SELECT count(*) FROM things")
            assert rows.fetchone()[0] == 4


def _open_in_child(path: str, queue) -> None:
    SQLiteFile(path, _SCHEMA, owner="test").connection().execute("INSERT INTO things VALUES ('child', 'x')")
    queue.put("opened")


def test_a_child_forked_while_a_file_is_being_set_up_can_open_files(tmp_path):
    """The setup lock is held by a thread the child does not have: the child gets a lock of its own."""
    from nbflow.persistence import sqlite_file

    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    with sqlite_file._OPENING:  # another thread is setting a file up at the moment of the fork
        child = ctx.Process(target=_open_in_child, args=(str(tmp_path / "child.db"), results))
        child.start()
    try:
        assert results.get(timeout=60) == "opened"
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
