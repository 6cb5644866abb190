"""One sequence-id convention, Burr's: an application's ``sequence_id`` is the id of its last completed step.

The application, its persister and its tracker agree on it, so the id an application reports
after a step is the one to look the step up by.
"""

import pytest

from nbflow import ApplicationBuilder, InMemoryPersister, LocalTracker, SQLitePersister, action, state_at


@action(reads=["n"], writes=["n"])
def tick(state):
    return state.update(n=state["n"] + 1)


def _app(**hooks):
    builder = ApplicationBuilder().with_actions(tick=tick).with_transitions(("tick", "tick")).with_state(n=0)
    builder = builder.with_entrypoint("tick").with_identifiers(app_id="seq")
    if "tracker" in hooks:
        builder = builder.with_tracker(hooks["tracker"])
    if "persister" in hooks:
        builder = builder.with_persister(hooks["persister"])
    return builder.build()


def test_sequence_id_is_none_before_the_first_step_then_the_last_completed_one():
    """Before any step there is no completed step; after k steps the id is k - 1."""
    app = _app()
    assert app.sequence_id is None
    app.step()
    assert app.sequence_id == 0
    app.step()
    app.step()
    assert app.sequence_id == 2


def test_sequence_id_state_at_finds_the_step_the_application_reports(tmp_path):
    """Right after a step, state_at(app_id, app.sequence_id) is the state the application holds."""
    tracker = LocalTracker("seq", storage_dir=tmp_path)
    app = _app(tracker=tracker)
    app.step()
    app.step()
    tracker.flush()
    assert state_at(app.app_id, app.sequence_id, tracker) == app.state == {"n": 2}


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_sequence_id_persister_record_matches_the_application(tmp_path, kind):
    """The persister's latest record carries the application's sequence_id, and resuming keeps it."""
    persister = SQLitePersister(tmp_path / "runs.db") if kind == "sqlite" else InMemoryPersister()
    app = _app(persister=persister)
    app.step()
    app.step()
    assert persister.load(None, "seq").sequence_id == app.sequence_id == 1
    resumed = (
        ApplicationBuilder()
        .with_actions(tick=tick)
        .with_transitions(("tick", "tick"))
        .initialize_from(persister)
        .with_identifiers(app_id="seq")
        .with_persister(persister)
        .build()
    )
    assert resumed.sequence_id == 1 and resumed.state == {"n": 2}
    resumed.step()
    assert resumed.sequence_id == 2 and persister.load(None, "seq").sequence_id == 2


def test_sequence_id_context_during_a_step_is_the_id_of_that_step():
    """An action sees, in its context, the id its step will be recorded under."""
    seen = []

    @action(reads=[], writes=[])
    def where(state, __context):
        seen.append(__context.sequence_id)
        return state

    app = ApplicationBuilder().with_actions(w=where).with_transitions(("w", "w")).with_entrypoint("w").build()
    app.step()
    app.step()
    assert seen == [0, 1] and app.sequence_id == 1


def test_sequence_id_failed_step_leaves_it_at_the_last_completed_step():
    """A step that raises does not count: sequence_id stays where it was, and the retry gets the same id."""
    calls = []

    @action(reads=[], writes=[])
    def flaky(state, __context):
        calls.append(__context.sequence_id)
        if len(calls) == 2:
            raise RuntimeError("once")
        return state

    app = ApplicationBuilder().with_actions(f=flaky).with_transitions(("f", "f")).with_entrypoint("f").build()
    app.step()
    with pytest.raises(RuntimeError):
        app.step()
    assert app.sequence_id == 0
    app.step()
    assert calls == [0, 1, 1] and app.sequence_id == 1
