"""SQLitePersister and InMemoryPersister: saving, loading, listing, pickling, and clear errors."""

import os
import pickle
import sqlite3
import stat

import pytest

from nbflow import PersistenceError, SerializationError, State
from nbflow.persistence import InMemoryPersister, SQLitePersister


@pytest.fixture(params=["sqlite", "memory"])
def persister(request, tmp_path):
    """Each persister kind in turn, the SQLite one on a real file."""
    if request.param == "sqlite":
        p = SQLitePersister(tmp_path / "runs.db")
        yield p
        p.close()
    else:
        yield InMemoryPersister()


def _save(p, app_id="a", seq=0, position="start", status="completed", partition_key=None, **values):
    p.save(
        partition_key=partition_key,
        app_id=app_id,
        sequence_id=seq,
        position=position,
        state=State(values),
        status=status,
    )


def test_persister_load_returns_the_latest_step(persister):
    """load() gives the step with the highest sequence id of that application."""
    _save(persister, seq=0, position="a", x=1)
    _save(persister, seq=1, position="b", x=2)
    record = persister.load(None, "a")
    assert (record.sequence_id, record.position, record.status, record.state) == (
        1,
        "b",
        "completed",
        {"x": 2},
    )


def test_persister_load_of_an_unknown_app_is_none(persister):
    """An app id with no saved steps loads as None."""
    assert persister.load(None, "nobody") is None


def test_persister_partition_keys_keep_applications_apart(persister):
    """The same app id under two partition keys are two applications."""
    _save(persister, partition_key="alice", x=1)
    _save(persister, partition_key="bob", x=2)
    assert persister.load("alice", "a").state["x"] == 1
    assert persister.load("bob", "a").state["x"] == 2
    assert persister.list_app_ids("alice") == ["a"]


def test_persister_load_without_app_id_gives_the_partitions_latest_app(persister):
    """With app_id=None, the most recently saved application of the partition is loaded."""
    _save(persister, app_id="old", x=1)
    _save(persister, app_id="new", x=2)
    assert persister.load(None, None).app_id == "new"
    assert persister.list_app_ids() == ["new", "old"]


def test_persister_saving_a_step_again_replaces_it(persister):
    """Re-saving a sequence id overwrites it instead of duplicating it."""
    _save(persister, seq=0, status="failed", x=1)
    _save(persister, seq=0, status="completed", x=2)
    assert persister.count() == 1 and persister.load(None, "a").status == "completed"


def test_persister_history_lists_every_step_in_order(persister):
    """history() gives all steps of one application, oldest first."""
    for i in range(3):
        _save(persister, seq=i, position=f"s{i}", x=i)
    assert [r.position for r in persister.history(None, "a")] == ["s0", "s1", "s2"]


def test_persister_clear_deletes_a_partition(persister):
    """clear() removes one partition's steps and says how many."""
    _save(persister, partition_key="p", x=1)
    _save(persister, partition_key="q", x=1)
    assert persister.clear("p") == 1 and persister.list_app_ids("q") == ["a"]


def test_persister_round_trips_through_pickle(persister):
    """A persister crosses process boundaries: after pickling it still reads the same records."""
    _save(persister, x=[1, 2])
    copy = pickle.loads(pickle.dumps(persister))
    assert copy.load(None, "a").state == {"x": [1, 2]}


def test_sqlite_persister_state_values_keep_their_types(tmp_path):
    """Tuples, bytes, nested dicts and StateLists come back as they went in."""
    p = SQLitePersister(tmp_path / "runs.db")
    state = State(t=(1, 2), b=b"\x00\x01", d={"k": [1.5, None]}).append(log="a")
    p.save(partition_key=None, app_id="a", sequence_id=0, position="s", state=state, status="completed")
    assert p.load(None, "a").state == {"t": (1, 2), "b": b"\x00\x01", "d": {"k": [1.5, None]}, "log": ["a"]}


def test_sqlite_persister_refuses_an_unserializable_value_naming_the_key(tmp_path):
    """A value JSON cannot hold names its key and both fixes, and nothing is written."""
    p = SQLitePersister(tmp_path / "runs.db")
    with pytest.raises(SerializationError) as info:
        p.save(
            partition_key=None,
            app_id="a",
            sequence_id=0,
            position="s",
            state=State(ok=1, model=object()),
            status="completed",
        )
    message = str(info.value)
    assert "'model'" in message and "object" in message
    assert "register_serde" in message and "allow_pickle=True" in message
    assert p.count() == 0


def test_sqlite_persister_allow_pickle_round_trips_other_objects(tmp_path):
    """With allow_pickle=True any picklable value is stored and loaded back."""
    from fractions import Fraction

    p = SQLitePersister(tmp_path / "runs.db", allow_pickle=True)
    p.save(
        partition_key=None,
        app_id="a",
        sequence_id=0,
        position="s",
        state=State(f=Fraction(1, 3)),
        status="completed",
    )
    assert p.load(None, "a").state["f"] == Fraction(1, 3)


def test_sqlite_persister_never_unpickles_without_opt_in(tmp_path):
    """A file holding pickles is refused by a persister that did not opt in."""
    from fractions import Fraction

    SQLitePersister(tmp_path / "runs.db", allow_pickle=True).save(
        partition_key=None,
        app_id="a",
        sequence_id=0,
        position="s",
        state=State(f=Fraction(1, 3)),
        status="completed",
    )
    with pytest.raises(SerializationError, match="allow_pickle=True"):
        SQLitePersister(tmp_path / "runs.db").load(None, "a")


def test_sqlite_persister_creates_its_file_for_the_owner_only(tmp_path):
    """The database file nbflow creates is readable and writable by its owner alone."""
    p = SQLitePersister(tmp_path / "deep" / "runs.db")
    _save(p, x=1)
    assert stat.S_IMODE(os.stat(tmp_path / "deep" / "runs.db").st_mode) == 0o600


def test_sqlite_persister_on_a_corrupted_file_names_it_and_the_fix(tmp_path):
    """A file that is not a database gives an error naming the file, not a crash."""
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PersistenceError) as info:
        SQLitePersister(path).load(None, "a")
    assert str(path) in str(info.value) and "move it aside" in str(info.value)


def test_sqlite_persister_of_another_schema_version_is_refused(tmp_path):
    """A database written by a different schema version names both versions."""
    path = tmp_path / "runs.db"
    _save(SQLitePersister(path), x=1)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE nbflow_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(PersistenceError, match=r"schema version 99; this nbflow reads version 1"):
        SQLitePersister(path).load(None, "a")


def test_sqlite_persister_in_a_read_only_folder_says_so(tmp_path):
    """A path that cannot be created gives an error naming it and what to check."""
    if os.geteuid() == 0:
        target = "/proc/nbflow-cannot-write-here/runs.db"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "runs.db"
    with pytest.raises(PersistenceError, match=r"writable"):
        _save(SQLitePersister(target), x=1)
