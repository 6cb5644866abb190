"""The bad-input catalogue: every mistake gets an error naming the culprit and the fix, and loses nothing.

Each case is a mistake a user makes, the call that makes it, the exception it
must raise, and the words its message must contain: the culprit (an action, a
key, a task, a parameter, a file) and the fix. The README's "Errors you may
see" is generated from this table: ``python tests/test_bad_inputs.py``.
"""

from __future__ import annotations

import pathlib
import re
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest

import nbflow
from nbflow import (
    ApplicationBuilder,
    GraphBuilder,
    MapStates,
    RunConcurrent,
    State,
    Sweep,
    TaskBasedParallelAction,
    action,
    expr,
    grid,
    zipped,
)


@dataclass(frozen=True)
class Case:
    area: str
    mistake: str
    call: Callable[[], object]
    error: type[BaseException]
    says: tuple[str, ...]


@action(reads=["count"], writes=["count"])
def counter(state):
    return state.update(count=state["count"] + 1)


@action(reads=["prompt"], writes=["answer"])
def ask(state, model):
    return state.update(answer=model)


@action(reads=["x"], writes=["y"])
def square(state):
    if state["x"] == 3:
        raise ValueError("x=3 is unlucky")
    return state.update(y=state["x"] ** 2)


class Squares(MapStates):
    reads, writes = ["n"], ["ys"]

    def action(self):
        return square

    def states(self, state):
        for x in range(state["n"]):
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(ys=sorted(s["y"] for s in states))


def loss(lr, depth):
    return {"loss": lr * depth}


def _app(*actions, transitions=(), entrypoint=None, **state):
    builder = (
        ApplicationBuilder().with_actions(**dict(actions)).with_transitions(*transitions).with_state(**state)
    )
    return builder.with_entrypoint(entrypoint or actions[0][0]).build()


def _run(app, **kwargs):
    return app.run(**kwargs)


def _action_that(body):
    @action(reads=["a"], writes=["b"])
    def act(state):
        return body(state)

    return act.with_name("act")


def _states_raise():
    class Broken(Squares):
        def states(self, state):
            yield state.update(x=0)
            yield state.update(x=1)
            raise OSError("the data source went away")

    return _run(_app(("fan", Broken()), n=0))


def _cache_depends_on_fails():
    def data_version():
        raise KeyError("DATA_VERSION")

    cache = nbflow.ResultCache(tempfile.mkdtemp(), depends_on=data_version)
    return nbflow.sweep(loss, grid(lr=[0.1], depth=[1]), cache=cache, progress=False)


def _second_live_writer():
    persister = nbflow.InMemoryPersister()

    def build():
        return (
            ApplicationBuilder()
            .with_actions(counter=counter)
            .with_transitions(("counter", "counter"))
            .with_persister(persister)
            .with_identifiers(app_id="exp-7")
            .with_state(count=0)
            .with_entrypoint("counter")
            .build()
        )

    first, second = build(), build()
    first.step()
    return second.step()


def _shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    if "parallel_map" not in shell.magics_manager.magics["cell"]:
        shell.run_cell("%load_ext nbflow", store_history=False)
    return shell


def _magic(line, cell="x"):
    return _shell().run_cell_magic("parallel_map", line, cell)


def _collected_name_missing():
    df = _magic("--no-progress --collect y x=[1, 2]", "if x > 1:\n    y = x")
    raise ValueError(df.loc[0, "error"])  # the error row's message, surfaced for the table


def _corrupted_db():
    path = pathlib.Path(tempfile.mkdtemp()) / "runs.db"
    path.write_bytes(b"definitely not sqlite " * 64)
    return nbflow.SQLitePersister(path).load(None, "a")


def _export(name):
    import pandas as pd

    return pd.DataFrame({"a": [1]}).nbflow.export(pathlib.Path(tempfile.mkdtemp()) / name)


def _best_of_unknown_metric():
    return nbflow.sweep(loss, grid(lr=[0.1], depth=[1]), progress=False).nbflow.best("acc")


def _unpicklable_to_processes():
    @action(reads=["x", "lock"], writes=["y"])
    def locked(state):
        return state.update(y=1)

    class WithLock(Squares):
        reads = ["n", "lock"]

        def action(self):
            return locked

    app = ApplicationBuilder().with_actions(fan=WithLock()).with_state(n=2, lock=threading.Lock())
    try:
        return _run(app.with_entrypoint("fan").with_executor("processes").build())
    finally:
        nbflow.MultiProcessExecutor().shutdown()


def _failing_task():
    return _run(
        ApplicationBuilder().with_actions(fan=Squares()).with_state(n=5).with_entrypoint("fan").build()
    )


def _tasks_yield_states():
    class Wrong(TaskBasedParallelAction):
        reads, writes = ["n"], ["out"]

        def tasks(self, state):
            yield State(x=1)

        def reduce(self, state, states):
            return state.update(out=list(states))

    return _run(ApplicationBuilder().with_actions(fan=Wrong()).with_state(n=1).with_entrypoint("fan").build())


def _reduce_returns_list():
    class Listy(Squares):
        def reduce(self, state, states):
            return [s["y"] for s in states]

    return _run(ApplicationBuilder().with_actions(fan=Listy()).with_state(n=2).with_entrypoint("fan").build())


def _async_action_sync_run():
    @action(reads=[], writes=["x"])
    async def fetch(state):
        return state.update(x=1)

    return _run(ApplicationBuilder().with_actions(fetch=fetch).with_entrypoint("fetch").build())


def _unserializable_state():
    p = nbflow.SQLitePersister(pathlib.Path(tempfile.mkdtemp()) / "runs.db")
    p.save(
        partition_key=None,
        app_id="a",
        sequence_id=0,
        position="s",
        state=State(model=object()),
        status="completed",
    )


def _resume_without_defaults():
    return (
        ApplicationBuilder()
        .with_actions(counter=counter)
        .initialize_from(nbflow.InMemoryPersister())
        .with_identifiers(app_id="exp-7")
        .build()
    )


def _unrecorded_step():
    tracker = nbflow.LocalTracker("bad-inputs", storage_dir=tempfile.mkdtemp())
    app = (
        ApplicationBuilder()
        .with_actions(counter=counter)
        .with_state(count=0)
        .with_entrypoint("counter")
        .with_tracker(tracker)
        .with_identifiers(app_id="t")
        .build()
    )
    app.run()
    return nbflow.state_at("t", 5, tracker)


def _panel_without_default():
    from nbflow.widgets import SweepPanel

    def train(lr, epochs):
        return lr

    return SweepPanel(train, lr=(0.1, 1.0))


CASES = [
    # -- the engine --------------------------------------------------------------------------
    Case(
        "engine",
        "read a key the state does not have",
        lambda: State(batch_size=1)["lr"],
        KeyError,
        ("'lr'", "batch_size", "Add 'lr' to the initial state"),
    ),
    Case(
        "engine",
        "increment a key that holds text",
        lambda: State(n="3").increment(n=1),
        TypeError,
        ("'n'", "Use update(n=...)"),
    ),
    Case(
        "engine",
        "append to a key that is not a list",
        lambda: State(n=1).append(n=2),
        TypeError,
        ("'n'", "Use update(n=...)"),
    ),
    Case(
        "engine",
        "pass a string as reads=",
        lambda: action(reads="x", writes=[]),
        TypeError,
        ("reads=", "reads=['count']"),
    ),
    Case(
        "engine",
        "an action reads a key nobody provides",
        lambda: _run(_app(("act", _action_that(lambda s: s)), b=1)),
        ValueError,
        ("'act'", "'a'", "with_state(a=...)"),
    ),
    Case(
        "engine",
        "an action reads a key it did not declare",
        lambda: _run(_app(("act", _action_that(lambda s: s.update(b=s["z"]))), a=1, z=2)),
        KeyError,
        ("'act'", "'z'", "Add 'z' to reads="),
    ),
    Case(
        "engine",
        "an action writes a key it did not declare",
        lambda: _run(_app(("act", _action_that(lambda s: s.update(c=1))), a=1)),
        KeyError,
        ("'act'", "'c'", "Add 'c' to writes="),
    ),
    Case(
        "engine",
        "an @action function returns a dict",
        lambda: _run(_app(("act", _action_that(lambda s: {"b": 1})), a=1)),
        TypeError,
        ("'act'", "returned dict", "state.update(**result)"),
    ),
    Case(
        "engine",
        "an action's input is not given",
        lambda: _run(_app(("ask", ask), prompt="hi")),
        TypeError,
        ("'ask'", "['model']", "inputs={'model': ...}", ".bind(model=...)"),
    ),
    Case(
        "engine",
        "a transition names an unknown action",
        lambda: GraphBuilder().with_actions(counter=counter).with_transitions(("counter", "conter")).build(),
        ValueError,
        ("'conter'", "Known actions: ['counter']", ".with_actions(conter=...)"),
    ),
    Case(
        "engine",
        "two actions share a name",
        lambda: GraphBuilder().with_actions(counter=counter).with_actions(counter=ask),
        ValueError,
        ("'counter'", "used twice", "unique name"),
    ),
    Case(
        "engine",
        "no entrypoint",
        lambda: ApplicationBuilder().with_actions(counter=counter).with_state(count=0).build(),
        ValueError,
        ("no entrypoint", ".with_entrypoint(name)", "['counter']"),
    ),
    Case(
        "engine",
        "halt_after names an unknown action",
        lambda: _run(_app(("counter", counter), count=0), halt_after=["countr"]),
        ValueError,
        ("'countr'", "Known actions: ['counter']"),
    ),
    Case(
        "engine",
        "an async action run with the sync run()",
        _async_action_sync_run,
        TypeError,
        ("'fetch'", "is async", "app.arun"),
    ),
    Case(
        "engine",
        "a condition expression that does not parse",
        lambda: expr("count >"),
        ValueError,
        ("'count >'", "does not parse", "expr('count > 10')"),
    ),
    Case(
        "engine",
        "a condition that calls a function",
        lambda: expr("open('x')"),
        ValueError,
        ("calls open", "may only call"),
    ),
    Case(
        "engine",
        "a condition on a key nothing provides",
        lambda: _app(("counter", counter), transitions=[("counter", "counter", expr("cuont < 3"))], count=0),
        ValueError,
        ("'cuont'", "'counter' -> 'counter'", ".with_state(cuont=...)"),
    ),
    # -- parallel actions --------------------------------------------------------------------
    Case(
        "parallel",
        "a misspelled executor name",
        lambda: nbflow.parallel.resolve_executor("daskk"),
        ValueError,
        ("'daskk'", "'dask'", "register_executor('daskk'"),
    ),
    Case(
        "parallel",
        "on_error= other than raise or record",
        lambda: Squares(on_error="ignore"),
        ValueError,
        ("on_error='ignore'", "'raise'", "'record'"),
    ),
    Case(
        "parallel",
        "a task raises (on_error='raise')",
        _failing_task,
        RuntimeError,
        ("Task 3 of 'fan'", "(x=3)", "ValueError: x=3 is unlucky", "exc.partial_state", "on_error='record'"),
    ),
    Case(
        "parallel",
        "an unpicklable value sent to processes",
        _unpicklable_to_processes,
        TypeError,
        ("Task 0 of 'fan'", "state key 'lock'", "executor='threads'"),
    ),
    Case(
        "parallel",
        "a timeout that is not a positive number",
        lambda: Squares(timeout=0),
        ValueError,
        ("Squares(timeout=0)", "positive number of seconds", "timeout=30"),
    ),
    Case(
        "parallel",
        "states() raises half-way",
        _states_raise,
        RuntimeError,
        (
            "Broken.states() of 'fan'",
            "OSError: the data source went away",
            "after making 2 task(s)",
            "Fix states()",
        ),
    ),
    Case(
        "parallel",
        "two concurrent branches write one key",
        lambda: RunConcurrent("both", items=[counter, counter.with_name("again")]),
        ValueError,
        ("'count'", "merge={'count': fn}", "sum_changes"),
    ),
    Case(
        "parallel",
        "tasks() yields something else",
        _tasks_yield_states,
        TypeError,
        ("Wrong.tasks()", "'fan'", "position 0", "SubGraphTask(action=..., state=...)"),
    ),
    Case(
        "parallel",
        "reduce() returns something else",
        _reduce_returns_list,
        TypeError,
        ("Listy.reduce()", "'fan'", "returned list", "state.update("),
    ),
    # -- sweeps ------------------------------------------------------------------------------
    Case(
        "sweeps",
        "a sweep timeout given as text",
        lambda: Sweep(loss, grid(lr=[0.1], depth=[1]), timeout="5"),
        ValueError,
        ("timeout='5'", "positive number of seconds"),
    ),
    Case("sweeps", "an axis that is a single number", lambda: grid(lr=0.1), ValueError, ("'lr'", "[0.1]")),
    Case(
        "sweeps",
        "zipped axes of different lengths",
        lambda: zipped(a=[1, 2], b=[1]),
        ValueError,
        ("'a'", "'b'", "2", "1"),
    ),
    Case(
        "sweeps",
        "the same axis in both factors of a product",
        lambda: grid(a=[1]) * grid(a=[2]),
        ValueError,
        ("'a'",),
    ),
    Case(
        "sweeps",
        "an axis that is not a parameter of the target",
        lambda: Sweep(loss, grid(lrr=[1], depth=[1])),
        ValueError,
        ("'lrr'", "loss()", "['lr', 'depth']", "Rename the axis"),
    ),
    Case(
        "sweeps",
        "a target parameter that no axis gives",
        lambda: Sweep(loss, grid(lr=[1])),
        ValueError,
        ("'depth'", "Add an axis depth=[...]"),
    ),
    # -- the magic ---------------------------------------------------------------------------
    Case(
        "magic",
        "an unknown %%parallel_map option",
        lambda: _magic("--fast x=[1]"),
        Exception,
        ("--fast", "Usage: %%parallel_map"),
    ),
    Case(
        "magic",
        "an axis expression that fails",
        lambda: _magic("lr=undefined * 2"),
        Exception,
        ("axis 'lr'", "NameError"),
    ),
    Case(
        "magic",
        "a --collect name some point never defines",
        _collected_name_missing,
        ValueError,
        ("--collect name 'y'", "x=1", "assign it in every branch"),
    ),
    # -- persistence, caching, tracking ----------------------------------------------------------
    Case("persistence", "a corrupted database file", _corrupted_db, OSError, ("runs.db", "move it aside")),
    Case(
        "persistence",
        "two live applications write one app id",
        _second_live_writer,
        OSError,
        ("'exp-7'", "initialize_from", "its own app_id"),
    ),
    Case(
        "persistence",
        "a cache depends_on that fails",
        _cache_depends_on_fails,
        ValueError,
        ("depends_on", "KeyError", "a callable with no arguments"),
    ),
    Case(
        "persistence",
        "a state value JSON cannot hold",
        _unserializable_state,
        TypeError,
        ("'model'", "object", "register_serde", "allow_pickle=True"),
    ),
    Case(
        "persistence",
        "resume an app id that was never saved, with no defaults",
        _resume_without_defaults,
        ValueError,
        ("'exp-7'", "default_state=", "default_entrypoint="),
    ),
    Case(
        "persistence",
        "ask the tracker for a step it did not record",
        _unrecorded_step,
        KeyError,
        ("no recorded step 5", "Recorded steps: [0]"),
    ),
    Case(
        "persistence",
        "cache= given a number",
        lambda: Squares(cache=3),
        TypeError,
        ("cache= takes True", "a directory"),
    ),
    # -- export ------------------------------------------------------------------------------
    Case(
        "export",
        "export to an unknown file type",
        lambda: _export("results.xlsx"),
        ValueError,
        (".xlsx", ".csv", ".parquet", ".json"),
    ),
    Case(
        "export", "best() of a column that is not there", _best_of_unknown_metric, KeyError, ("'acc'", "loss")
    ),
    # -- widgets -----------------------------------------------------------------------------
    Case(
        "widgets",
        "a SweepPanel target parameter with no default and no control",
        _panel_without_default,
        Exception,
        ("'epochs'",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.area}:{c.mistake}" for c in CASES])
def test_bad_input_names_the_culprit_and_the_fix(case, shutdown_processes):
    """The mistake raises the expected error, and its message says what and how to fix it."""
    with pytest.raises(case.error) as info:
        case.call()
    message = str(info.value)
    missing = [words for words in case.says if words not in message]
    assert not missing, f"{case.mistake}: message lacks {missing}:\n{message}"


def test_bad_input_catalogue_is_big_enough_and_in_the_readme():
    """At least 30 cases across every layer, each listed in the README's "Errors you may see"."""
    assert len(CASES) >= 30
    assert {c.area for c in CASES} >= {
        "engine",
        "parallel",
        "sweeps",
        "magic",
        "persistence",
        "export",
        "widgets",
    }
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Errors you may see", 1)[1].split("\n## ", 1)[0]
    missing = [c.mistake for c in CASES if c.mistake not in section]
    assert not missing, (
        f"README's 'Errors you may see' lacks: {missing}. Regenerate it with python tests/test_bad_inputs.py"
    )


def test_bad_input_failing_step_loses_nothing_computed():
    """After a failed step the application keeps the state from before it, and the tasks that finished."""
    app = ApplicationBuilder().with_actions(fan=Squares()).with_state(n=5).with_entrypoint("fan").build()
    with pytest.raises(nbflow.TaskFailed) as info:
        app.run()
    assert app.state == {"n": 5} and app.sequence_id is None
    assert info.value.finished >= 1 and info.value.partial_state is not None


def _markdown() -> str:
    rows = ["| area | you did | nbflow says (excerpt) |", "| --- | --- | --- |"]
    for case in CASES:
        try:
            case.call()
            said = "(no error: the catalogue is out of date)"
        except BaseException as exc:
            said = f"`{type(exc).__name__}`: {str(exc).splitlines()[0]}"
        said = re.sub(r"/tmp/[^ ']*/", ".../", said).replace("|", "\\|")
        rows.append(f"| {case.area} | {case.mistake} | {said[:260]}{'…' if len(said) > 260 else ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(_markdown() + "\n")
    nbflow.MultiProcessExecutor().shutdown()
