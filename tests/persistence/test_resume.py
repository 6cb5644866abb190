"""Resuming applications and parallel steps from a persister, including after a SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from nbflow import ApplicationBuilder, GraphError, MapStates, State, action, expr
from nbflow.persistence import InMemoryPersister, SQLitePersister

EXECUTIONS = []


@action(reads=["x", "round"], writes=["y"])
def work(state):
    EXECUTIONS.append((state["round"], state["x"]))
    return state.update(y=state["x"] * 10 + state["round"])


class Fan(MapStates):
    reads, writes = ["n", "round"], ["results"]

    def action(self):
        return work

    def states(self, state):
        for x in range(state["n"]):
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(results=sorted(s["y"] for s in states))


@action(reads=["round"], writes=["round"])
def next_round(state):
    return state.update(round=state["round"] + 1)


@action(reads=["results"], writes=["total"])
def summarize(state):
    return state.update(total=sum(state["results"]))


def _builder(persister, app_id="run-1", fan=None):
    return (
        ApplicationBuilder()
        .with_actions(fan=fan or Fan(), next_round=next_round, summarize=summarize)
        .with_transitions(
            ("fan", "next_round"), ("next_round", "fan", expr("round < 2")), ("next_round", "summarize")
        )
        .with_persister(persister)
        .initialize_from(persister, default_state={"n": 4, "round": 0}, default_entrypoint="fan")
        .with_identifiers(app_id=app_id)
    )


@pytest.fixture(autouse=True)
def _clear_executions():
    EXECUTIONS.clear()


def test_resume_application_goes_on_after_the_last_saved_step(tmp_path):
    """A rebuilt application continues at the action after its last saved step."""
    persister = SQLitePersister(tmp_path / "runs.db")
    first = _builder(persister).build()
    first.run(halt_after=["next_round"])
    again = _builder(persister).build()
    assert (again.sequence_id, again.next_action.name, again.state["round"]) == (1, "fan", 1)
    assert again.run(halt_after=["summarize"])[2]["total"] == sum(range(0, 40, 10)) + 4


def test_resume_first_run_uses_the_defaults(tmp_path):
    """With nothing saved, initialize_from starts from default_state at default_entrypoint."""
    app = _builder(SQLitePersister(tmp_path / "runs.db"), app_id="fresh").build()
    assert (app.sequence_id, app.next_action.name, app.state) == (None, "fan", {"n": 4, "round": 0})


def test_resume_without_record_or_defaults_names_the_app_id_and_the_fix():
    """initialize_from with an unknown app id and no defaults lists the saved ids and the fix."""
    persister = InMemoryPersister()
    persister.save(
        partition_key=None, app_id="known", sequence_id=0, position="fan", state=State(), status="completed"
    )
    builder = (
        ApplicationBuilder()
        .with_actions(fan=Fan())
        .initialize_from(persister)
        .with_identifiers(app_id="typo")
    )
    with pytest.raises(GraphError) as info:
        builder.build()
    message = str(info.value)
    assert "'typo'" in message and "default_state=" in message and "['known']" in message


def test_resume_of_a_failed_step_runs_that_step_again():
    """A step saved as failed is the next one to run after a restore."""
    persister = InMemoryPersister()
    calls = {"n": 0}

    @action(reads=["x"], writes=["x"])
    def flaky(state):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first time fails")
        return state.update(x=state["x"] + 1)

    def build():
        return (
            ApplicationBuilder()
            .with_actions(flaky=flaky)
            .with_persister(persister)
            .initialize_from(persister, default_state={"x": 0}, default_entrypoint="flaky")
            .with_identifiers(app_id="f")
            .build()
        )

    with pytest.raises(RuntimeError):
        build().run()
    assert persister.load(None, "f").status == "failed"
    app = build()
    assert app.next_action.name == "flaky" and app.run()[2]["x"] == 1


def test_resume_not_at_next_action_starts_over_with_the_saved_state(tmp_path):
    """resume_at_next_action=False restarts at the entrypoint but keeps the saved state."""
    persister = SQLitePersister(tmp_path / "runs.db")
    _builder(persister).build().run(halt_after=["next_round"])
    app = (
        ApplicationBuilder()
        .with_actions(fan=Fan(), next_round=next_round, summarize=summarize)
        .with_transitions(("fan", "next_round"))
        .initialize_from(persister, resume_at_next_action=False, default_entrypoint="summarize")
        .with_identifiers(app_id="run-1")
        .build()
    )
    assert app.next_action.name == "summarize" and app.state["round"] == 1


def test_resume_second_pass_of_a_loop_computes_fresh_results(tmp_path):
    """The same map action in a loop's second pass runs every task again (apache/burr#761)."""
    persister = SQLitePersister(tmp_path / "runs.db")
    state = _builder(persister).build().run(halt_after=["summarize"])[2]
    assert sorted(EXECUTIONS) == [(r, x) for r in (0, 1) for x in range(4)]
    assert state["results"] == [1, 11, 21, 31]


def test_resume_finished_tasks_are_loaded_not_recomputed(tmp_path):
    """Re-running an interrupted parallel step loads the tasks that finished and runs only the rest."""
    persister = SQLitePersister(tmp_path / "runs.db")
    # Simulate a crash half-way through step 0: two tasks' sub-applications were saved, the step was not.
    fan_state = State(n=4, round=0, results=None).wipe(delete=["results"])
    from nbflow.fingerprint import DigestMemo
    from nbflow.parallel.tasks import task_app_id

    for x in (0, 2):
        # A saved task is found by position and by what it starts from (its read state).
        start = DigestMemo().task(["x", "round"], {}, fan_state.update(x=x))
        sub_id = task_app_id("run-1", 0, "fan", x, start)
        persister.save(
            partition_key=None,
            app_id=sub_id,
            sequence_id=0,
            position="work",
            state=fan_state.update(x=x, y=x * 10),
            status="completed",
        )
    seen = []

    class Watch(Fan):
        def reduce(self, state, states):
            states = list(states)
            seen.extend((s["x"], s.task.resumed) for s in states)
            return super().reduce(state, states)

    _builder(persister, fan=Watch()).build().run(halt_after=["fan"])
    assert sorted(EXECUTIONS) == [(0, 1), (0, 3)]
    assert sorted(seen) == [(0, True), (1, False), (2, True), (3, False)]


CRASHY = textwrap.dedent(
    """
    import os, sys, time
    from nbflow import ApplicationBuilder, MapStates, SQLitePersister, action

    LOG = sys.argv[2]

    @action(reads=["x"], writes=["y"])
    def slow(state):
        time.sleep(0.05)
        with open(LOG, "a") as log:
            log.write(f"{state['x']}\\n")
        return state.update(y=state["x"] ** 2)

    class Fan(MapStates):
        reads, writes = ["n"], ["results"]
        def action(self):
            return slow
        def states(self, state):
            for x in range(state["n"]):
                yield state.update(x=x)
        def reduce(self, state, states):
            return state.update(results=sorted(s["y"] for s in states))

    @action(reads=[], writes=["n"])
    def prepare(state):
        return state.update(n=40)

    persister = SQLitePersister(sys.argv[1])
    app = (
        ApplicationBuilder()
        .with_actions(prepare=prepare, fan=Fan())
        .with_transitions(("prepare", "fan"))
        .with_persister(persister)
        .initialize_from(persister, default_state={}, default_entrypoint="prepare")
        .with_identifiers(app_id="crashy")
        .with_executor("threads")
        .build()
    )
    print(app.run(halt_after=["fan"])[2]["results"] == [x * x for x in range(40)])
    """
)


def test_resume_after_sigkill_runs_only_the_unfinished_tasks(tmp_path):
    """A process killed half-way through a parallel step loses no task, and a restart recomputes none that was saved."""
    script = tmp_path / "crashy.py"
    script.write_text(CRASHY)
    db, first_log, second_log = tmp_path / "runs.db", tmp_path / "first.log", tmp_path / "second.log"
    first_log.touch()
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(first_log)])
    deadline = time.monotonic() + 60
    while len(first_log.read_text().split()) < 15 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    persister = SQLitePersister(db)
    assert persister.load(None, "crashy").position == "prepare"
    from nbflow.fingerprint import DigestMemo
    from nbflow.parallel.tasks import task_app_id

    def saved_id(x):
        return task_app_id("crashy", 1, "fan", x, DigestMemo().task(["x"], {}, {"x": x}))

    saved = {x for x in range(40) if persister.load(None, saved_id(x)) is not None}
    assert 10 <= len(saved) < 40

    done = subprocess.run(
        [sys.executable, str(script), str(db), str(second_log)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    rerun = [int(x) for x in second_log.read_text().split()]
    assert sorted(rerun) == sorted(set(range(40)) - saved)
    assert json.dumps(sorted(saved | set(rerun))) == json.dumps(list(range(40)))


def test_resume_parallel_action_can_opt_its_tasks_out_of_persistence(tmp_path):
    """persister() returning None keeps the tasks' sub-applications out of the parent's persister."""

    class Unsaved(Fan):
        def persister(self, context):
            return None

    persister = SQLitePersister(tmp_path / "runs.db")
    _builder(persister, fan=Unsaved()).build().run(halt_after=["fan"])
    assert persister.list_app_ids() == ["run-1"]


def test_resume_parallel_action_can_give_its_tasks_their_own_persister(tmp_path):
    """persister() returning a persister saves the tasks there instead."""
    own = InMemoryPersister()

    class Elsewhere(Fan):
        def persister(self, context):
            return own

    persister = SQLitePersister(tmp_path / "runs.db")
    _builder(persister, fan=Elsewhere()).build().run(halt_after=["fan"])
    assert persister.list_app_ids() == ["run-1"] and len(own.list_app_ids()) == 4
