"""Security (issue: reliability): no unpickling without opt-in, owner-only files, exports that write
only where they are told, and no network listener of nbflow's own."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pandas as pd
import pytest

import nbflow.sweeps.export  # noqa: F401 (registers df.nbflow)
from nbflow import ApplicationBuilder, LocalTracker, ResultCache, SQLitePersister, Sweep, action, grid
from nbflow.core.state import State
from nbflow.errors import ExportError, SerializationError
from nbflow.persistence.serde import to_json
from nbflow.sweeps.export import load_results

FORMATS = [
    ".csv",
    ".json",
    pytest.param(".parquet", marks=pytest.mark.skipif(
        importlib.util.find_spec("pyarrow") is None, reason="needs pyarrow (parquet extra)"
    )),
]  # fmt: skip


# -- (1) nothing is unpickled unless the reader opted in ----------------------------------------------


def leave_mark(path: str) -> str:
    """What unpickling a `Canary` runs: it leaves a file behind, so a test can tell it ran."""
    with open(path, "a") as f:
        f.write("unpickled\n")
    return "the canary ran"


class Canary:
    """A value JSON cannot hold; its pickle runs `leave_mark` when loaded, as a malicious one would run anything."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return leave_mark, (self.marker,)


def _refusal(message: str, type_name: str = "test_security.Canary") -> None:
    assert f"it holds a pickled {type_name}" in message
    assert "Unpickling runs arbitrary code, so nbflow refuses it by default" in message
    assert "pass allow_pickle=True only for files you trust" in message


def with_canary(x, marker):
    """A sweep point whose result JSON cannot hold."""
    return {"obj": Canary(marker)}


def test_cache_entry_holding_a_pickle_is_refused_without_opt_in(tmp_path):
    """A sweep cached with allow_pickle=True: a cache without it refuses the 2 entries and runs no pickle."""
    marker = tmp_path / "unpickled"
    points = grid(x=[1, 2], marker=[str(marker)])
    trusting = ResultCache(tmp_path / "cache", allow_pickle=True)
    first = Sweep(with_canary, points, cache=trusting, executor="sequential", progress=False).run()
    assert first["status"].tolist() == ["ok", "ok"] and trusting.summary()["entries"] == 2

    with pytest.raises(SerializationError) as info:
        Sweep(with_canary, points, cache=tmp_path / "cache", executor="sequential", progress=False).run()
    _refusal(str(info.value))
    assert str(tmp_path / "cache" / "cache.db") in str(info.value)
    assert not marker.exists()

    # The control: a cache that opts in does run the pickle, so the refusal above was real.
    again = Sweep(with_canary, points, cache=trusting, executor="sequential", progress=False).run()
    assert again["status"].tolist() == ["cached", "cached"]
    assert again["obj"].tolist() == ["the canary ran"] * 2
    assert marker.read_text() == "unpickled\n" * 2


def test_persisted_state_holding_a_pickle_is_refused_without_opt_in(tmp_path):
    """A step saved with allow_pickle=True: load, history and resuming without it refuse it and run no pickle."""
    marker = tmp_path / "unpickled"
    path = tmp_path / "runs.db"
    SQLitePersister(path, allow_pickle=True).save(
        partition_key=None,
        app_id="app",
        sequence_id=0,
        position="step",
        state=State(n=1, obj=Canary(str(marker))),
        status="completed",
    )
    persister = SQLitePersister(path)
    for read in (lambda: persister.load(None, "app"), lambda: persister.history(None, "app")):
        with pytest.raises(SerializationError) as info:
            read()
        _refusal(str(info.value))
        assert f"app 'app', step 0 in {str(path)!r}" in str(info.value)

    @action(reads=["n"], writes=["n"])
    def step(state):
        return state.update(n=state["n"] + 1)

    with pytest.raises(SerializationError) as info:
        (
            ApplicationBuilder()
            .with_actions(step=step)
            .with_transitions(("step", "step"))
            .initialize_from(persister, default_state={"n": 0}, default_entrypoint="step")
            .with_identifiers(app_id="app")
            .build()
        )
    _refusal(str(info.value))
    assert not marker.exists()

    trusting = SQLitePersister(path, allow_pickle=True)
    assert trusting.load(None, "app").state["obj"] == "the canary ran"
    assert marker.exists()


def test_tracker_records_an_unpicklable_value_as_text_and_never_unpickles(tmp_path):
    """The tracker stores a value JSON cannot hold as its repr, so reading it back runs nothing."""
    marker = tmp_path / "unpickled"

    @action(reads=[], writes=["obj"])
    def make(state):
        return state.update(obj=Canary(str(marker)))

    tracker = LocalTracker("pickles", storage_dir=tmp_path)
    app = (
        ApplicationBuilder()
        .with_actions(make=make)
        .with_transitions(("make", "make"))
        .with_entrypoint("make")
        .with_identifiers(app_id="app")
        .with_tracker(tracker)
        .build()
    )
    app.step()
    tracker.flush()
    written = LocalTracker("pickles", storage_dir=tmp_path).steps("app")[0]["written"]
    assert list(written) == ["obj"] and written["obj"]["__repr__"].startswith("<test_security.Canary object")
    assert b"pickle" not in (tmp_path / "pickles.db").read_bytes()
    assert not marker.exists()


def _plant_pickle(path: Path, suffix: str, cell: str) -> None:
    """Swap the first ``obj`` cell of an export for ``cell`` (serde JSON text holding a pickle)."""
    if suffix == ".json":
        payload = json.loads(path.read_text())
        payload["data"][0]["obj"] = json.loads(cell)
        path.write_text(json.dumps(payload))
    elif suffix == ".csv":
        frame = pd.read_csv(path, dtype=object)
        frame.loc[0, "obj"] = cell
        frame.to_csv(path, index=False)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        cells = table.column("obj").to_pylist()
        cells[0] = cell
        table = table.set_column(table.schema.get_field_index("obj"), "obj", pa.array(cells))
        pq.write_table(table, path)  # set_column keeps the schema's nbflow metadata


@pytest.mark.parametrize("suffix", FORMATS)
def test_export_file_holding_a_pickle_is_refused_on_load(suffix, tmp_path):
    """An export whose object cell was swapped for a pickle: load_results refuses it and runs no pickle."""
    marker = tmp_path / "unpickled"
    path = tmp_path / f"runs{suffix}"
    pd.DataFrame({"x": [1, 2], "obj": [(1, 2), (3, 4)]}).nbflow.export(path)
    cell = json.dumps(to_json(Canary(str(marker)), allow_pickle=True))
    _plant_pickle(path, suffix, cell)
    if suffix == ".json":
        with pytest.raises(SerializationError) as info:
            load_results(path)
        _refusal(str(info.value))
    else:
        # CSV and parquet cells are restored column by column, and a column that will not
        # convert is left as stored, with a warning: here, the pickle's JSON text.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = load_results(path)
        _refusal("\n".join(str(w.message) for w in caught))
        assert loaded.loc[0, "obj"] == cell
    assert not marker.exists()


# -- (2) files nbflow creates are readable by their owner only ----------------------------------------

MAKE_FILES = textwrap.dedent(
    """
    import json, os, sys
    os.umask(int(sys.argv[2], 8))
    import pandas as pd
    import nbflow.sweeps.export
    from nbflow import ApplicationBuilder, LocalTracker, ResultCache, SQLitePersister, action
    from nbflow.core.state import State

    folder = sys.argv[1]
    persister = SQLitePersister(f"{folder}/persist/runs.db")
    persister.save(partition_key=None, app_id="app", sequence_id=0, position="step",
                   state=State(n=1), status="completed")
    cache = ResultCache(f"{folder}/cache")
    cache.put("key", {"y": 1}, "label")
    assert cache.get("key") == {"y": 1}

    @action(reads=["n"], writes=["n"])
    def bump(state):
        return state.update(n=state["n"] + 1)

    tracker = LocalTracker("project", storage_dir=f"{folder}/tracking")
    app = (ApplicationBuilder().with_actions(bump=bump).with_transitions(("bump", "bump"))
           .with_state(n=0).with_entrypoint("bump").with_tracker(tracker).build())
    app.step()
    tracker.flush()
    df = pd.DataFrame({"x": [1, 2]})
    for suffix in sys.argv[3].split(","):
        df.nbflow.export(f"{folder}/exports/runs{suffix}")
    # Every connection is still open, so the -wal and -shm files exist while the test looks.
    print(json.dumps(sorted(os.path.join(d, f) for d, _, files in os.walk(folder) for f in files)), flush=True)
    sys.stdin.readline()
    """
)


@pytest.mark.parametrize("umask", ["022", "000"])
def test_files_nbflow_creates_are_owner_only_whatever_the_umask(umask, tmp_path):
    """Persister, cache and tracker databases with their -wal/-shm files, and every export incl. the CSV sidecar, are mode 0o600."""
    suffixes = ".csv,.json" + (",.parquet" if importlib.util.find_spec("pyarrow") else "")
    child = subprocess.Popen(
        [sys.executable, "-c", MAKE_FILES, str(tmp_path), umask, suffixes],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line, child.stderr.read()
        files = {
            str(Path(p).relative_to(tmp_path)): stat.S_IMODE(os.stat(p).st_mode) for p in json.loads(line)
        }
    finally:
        child.communicate("done\n", timeout=60)
    expected = (
        {
            f"{folder}/{name}{side}"
            for folder, name in (("persist", "runs.db"), ("cache", "cache.db"), ("tracking", "project.db"))
            for side in ("", "-wal", "-shm")
        }
        | {f"exports/runs{s}" for s in suffixes.split(",")}
        | {"exports/runs.csv.nbflow.json"}
    )
    assert set(files) == expected
    # SQLite creates -wal and -shm with the database file's own mode (not the umask's), and the
    # database was created 0o600 by open_private, so all three are private.
    assert {name: oct(mode) for name, mode in files.items() if mode != 0o600} == {}
    assert child.returncode == 0


# -- (3) an export writes only where its path points --------------------------------------------------


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if not p.is_symlink() else b"-> " + bytes(p.readlink())
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def _frame() -> pd.DataFrame:
    df = pd.DataFrame({"lr": [0.1, 0.01], "loss": [0.5, 0.2]})
    df.attrs["nbflow"] = {"target_name": "train"}
    return df


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("victim_exists", [True, False], ids=["existing target", "dangling link"])
def test_export_refuses_a_symlink_leading_outside_its_folder(suffix, victim_exists, tmp_path):
    """runs.<ext> linked to a file in another folder: ExportError naming both and the fix; nothing is written anywhere."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    victim = elsewhere / f"precious{suffix}"
    if victim_exists:
        victim.write_text("keep me")
    link = out / f"runs{suffix}"
    link.symlink_to(victim)
    before = _tree(tmp_path)
    with pytest.raises(ExportError) as info:
        _frame().nbflow.export(link)
    message = str(info.value)
    assert f"Cannot export to {link}: it is a symbolic link to {victim}, outside {out}" in message
    assert "nbflow does not write through links that lead elsewhere" in message
    assert f"Remove the link, or pass {victim} itself" in message
    assert _tree(tmp_path) == before


def test_export_refuses_a_csv_sidecar_symlink_leading_outside_its_folder(tmp_path):
    """A CSV whose sidecar name is linked to a file elsewhere: ExportError, and neither file is written."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    victim = elsewhere / "precious.json"
    victim.write_text("keep me")
    (out / "runs.csv.nbflow.json").symlink_to(victim)
    before = _tree(tmp_path)
    with pytest.raises(ExportError) as info:
        _frame().nbflow.export(out / "runs.csv")
    assert (
        f"Cannot write the CSV sidecar {out / 'runs.csv.nbflow.json'}: it is a symbolic link to {victim}"
        in str(info.value)
    )
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("suffix", FORMATS)
def test_export_through_a_symlink_within_its_folder_writes_the_linked_file(suffix, tmp_path):
    """latest.<ext> linked to run-7.<ext> beside it: the export replaces run-7's content and the link stays a link."""
    target = tmp_path / f"run-7{suffix}"
    target.write_text("old")
    link = tmp_path / f"latest{suffix}"
    link.symlink_to(target.name)
    written = _frame().nbflow.export(link)
    assert written == target and link.is_symlink()
    pd.testing.assert_frame_equal(load_results(link), _frame())
    assert load_results(link).attrs["nbflow"] == {"target_name": "train"}


@pytest.mark.parametrize("suffix", FORMATS)
def test_export_path_with_dotdot_writes_exactly_the_file_it_names(suffix, tmp_path):
    """'a/b/../runs.<ext>' writes a/runs.<ext> (and a CSV's sidecar beside it) and nothing else."""
    written = _frame().nbflow.export(tmp_path / "a" / "b" / ".." / f"runs{suffix}")
    assert written == tmp_path / "a" / f"runs{suffix}"
    expected = {f"a/runs{suffix}"} | ({"a/runs.csv.nbflow.json"} if suffix == ".csv" else set())
    assert set(_tree(tmp_path)) == expected


# -- (4) no network listener of nbflow's own ----------------------------------------------------------

RUN_EVERYTHING = textwrap.dedent(
    """
    import sys
    from nbflow import (ApplicationBuilder, LocalTracker, MultiProcessExecutor, SQLitePersister,
                        Sweep, action, grid)

    def square(x):
        return {"y": x * x}

    @action(reads=["n"], writes=["n"])
    def bump(state):
        return state.update(n=state["n"] + 1)

    folder = sys.argv[1]
    for executor in ("threads", "processes"):
        Sweep(square, grid(x=range(8)), executor=executor, progress=False).run()
    tracker = LocalTracker("net", storage_dir=folder)
    app = (ApplicationBuilder().with_actions(bump=bump).with_transitions(("bump", "bump"))
           .with_state(n=0).with_entrypoint("bump").with_identifiers(app_id="net")
           .with_persister(SQLitePersister(f"{folder}/runs.db")).with_tracker(tracker).build())
    app.step()
    app.step()
    tracker.flush()
    print("ready", flush=True)  # the loky workers stay warm until shutdown: their sockets count too
    sys.stdin.readline()
    MultiProcessExecutor().shutdown()
    """
)


def _process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += frontier
    return tree


def _listeners(pids: list[int]) -> list[str]:
    """The listening TCP and bound, unconnected UDP sockets held by ``pids``, as 'proto local-address'."""
    inodes = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    found = []
    for proto, listening in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        table = Path(f"/proc/{pids[0]}/net/{proto}")
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == listening and inode in inodes:
                found.append(f"{proto} {local}")
    return found


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")
def test_nbflow_opens_no_network_listener(tmp_path, shutdown_processes):
    """Sweeps on threads and processes, a persister and a tracker: no listening TCP/UDP socket in the process or its workers."""
    # The control: the scan does see listeners when there are some.
    tcp, udp = (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    )
    try:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        seen = _listeners([os.getpid()])
        assert {s.split()[0] for s in seen} >= {"tcp", "udp"}
    finally:
        tcp.close()
        udp.close()

    child = subprocess.Popen(
        [sys.executable, "-c", RUN_EVERYTHING, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "ready\n", child.stderr.read()
        tree = _process_tree(child.pid)
        listening = _listeners(tree)
    finally:
        child.communicate("done\n", timeout=60)
    assert len(tree) >= 2  # the child and at least one loky worker were looked at
    assert listening == []
    assert child.returncode == 0
