"""A second live writer to one app id gets a clear conflict error, never silent overwrites."""

import pytest

from nbflow import ApplicationBuilder, InMemoryPersister, PersistenceError, SQLitePersister, action


@action(reads=["n"], writes=["n"])
def tick(state):
    return state.update(n=state["n"] + 1)


def _build(persister, app_id="shared", resume=False):
    builder = (
        ApplicationBuilder()
        .with_actions(tick=tick)
        .with_transitions(("tick", "tick"))
        .with_persister(persister)
        .with_identifiers(app_id=app_id)
    )
    if resume:
        return builder.initialize_from(persister, default_state={"n": 0}, default_entrypoint="tick").build()
    return builder.with_state(n=0).with_entrypoint("tick").build()


@pytest.fixture(params=["sqlite", "memory"])
def persister(request, tmp_path):
    return SQLitePersister(tmp_path / "runs.db") if request.param == "sqlite" else InMemoryPersister()


def test_writer_conflict_two_live_applications_on_one_app_id(persister):
    """Two applications built with one app id: the second to save is refused, naming the app id and the fix."""
    first, second = _build(persister), _build(persister)
    first.step()
    first.step()
    with pytest.raises(PersistenceError) as info:
        second.step()
    message = str(info.value)
    assert "'shared'" in message and "initialize_from" in message and "app_id" in message
    assert [r.state["n"] for r in persister.history(None, "shared")] == [1, 2]
    # What the refused step computed is still in hand; only saving it was refused.
    assert second.state == {"n": 1}


def test_writer_conflict_two_resumed_applications_race_for_the_next_step(persister):
    """Both resumed from step 0: the first to save step 1 wins, the other is refused."""
    _build(persister, resume=True).step()
    a, b = _build(persister, resume=True), _build(persister, resume=True)
    a.step()
    with pytest.raises(PersistenceError, match="'shared'"):
        b.step()
    assert persister.load(None, "shared").state == {"n": 2}


def test_writer_conflict_one_application_keeps_saving_and_retries_a_failed_step(persister):
    """The single writer of an app id is never refused, also when it saves a failed step and retries it."""
    calls = []

    @action(reads=["n"], writes=["n"])
    def flaky(state):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("once")
        return state.update(n=state["n"] + 1)

    app = (
        ApplicationBuilder()
        .with_actions(flaky=flaky)
        .with_transitions(("flaky", "flaky"))
        .with_persister(persister)
        .with_identifiers(app_id="solo")
        .with_state(n=0)
        .with_entrypoint("flaky")
        .build()
    )
    app.step()
    with pytest.raises(RuntimeError):
        app.step()
    app.step()
    app.step()
    assert persister.load(None, "solo").state == {"n": 3}


def test_writer_conflict_resuming_after_the_first_is_done_is_fine(persister):
    """A later application that resumes (initialize_from) takes over from where the first stopped."""
    first = _build(persister, resume=True)
    first.step()
    later = _build(persister, resume=True)
    later.step()
    assert persister.load(None, "shared").state == {"n": 2}


WRITER = """
import sys
from nbflow import ApplicationBuilder, PersisterConflictError, SQLitePersister, action

@action(reads=["n"], writes=["n", "who"])
def tick(state):
    return state.update(n=state["n"] + 1, who=sys.argv[2])

persister = SQLitePersister(sys.argv[1])
app = (ApplicationBuilder().with_actions(tick=tick).with_transitions(("tick", "tick"))
       .with_persister(persister).with_identifiers(app_id="shared").with_state(n=0, who="")
       .with_entrypoint("tick").build())
try:
    for _ in range(200):
        app.step()
except PersisterConflictError:
    print("refused")
else:
    print("done")
"""


def test_writer_conflict_two_processes_at_once_one_wins_and_nothing_interleaves(tmp_path):
    """Two processes writing one app id at the same time: one is refused, and every saved step is the other's."""
    import subprocess
    import sys

    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "runs.db"
    SQLitePersister(db).count()  # create the file first, so neither process races to make the schema
    procs = [
        subprocess.Popen([sys.executable, str(script), str(db), name], stdout=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    outcomes = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outcomes == ["done", "refused"]
    steps = SQLitePersister(db).history(None, "shared")
    assert [r.state["n"] for r in steps] == list(range(1, 201))
    assert len({r.state["who"] for r in steps}) == 1
