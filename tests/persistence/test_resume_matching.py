"""Resume reuses a saved task result only for the same task: its inputs and read state, not its position."""

import pytest

from nbflow import ApplicationBuilder, MapStates, SQLitePersister, Sweep, TaskFailed, action

CALLS = []


def square_failing_at_4(x):
    CALLS.append(x)
    if x == 4:
        raise ValueError("x=4 is broken")
    return {"y": x * x}


def _app(persister, points, executor):
    s = Sweep(square_failing_at_4, {"x": points}, on_error="raise", progress=False, executor=executor)
    return (
        ApplicationBuilder()
        .with_actions(train=s)
        .with_persister(persister)
        .initialize_from(persister, default_state={}, default_entrypoint="train")
        .with_identifiers(app_id="study")
        .build()
    )


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes", "async"])
def test_resume_with_a_changed_grid_never_files_old_results_under_new_parameters(
    tmp_path, executor, shutdown_processes
):
    """x=[1..6] fails at 4; the same app id over x=[10..60] computes every new point, none shows x=1..4's result."""
    persister = SQLitePersister(tmp_path / "runs.db")
    with pytest.raises(TaskFailed):
        _app(persister, [1, 2, 3, 4, 5, 6], executor).run()
    app = _app(persister, [10, 20, 30, 40, 50, 60], executor)
    if executor == "async":
        import asyncio

        df = asyncio.run(app.arun())[2]["results"]
    else:
        df = app.run()[2]["results"]
    assert df["x"].tolist() == [10, 20, 30, 40, 50, 60]
    assert df["y"].tolist() == [x * x for x in [10, 20, 30, 40, 50, 60]]
    assert df["status"].tolist() == ["ok"] * 6


def test_resume_with_the_same_grid_still_reuses_finished_tasks(tmp_path):
    """Resume keeps its point: unchanged tasks that finished before are loaded, not run again."""
    persister = SQLitePersister(tmp_path / "runs.db")
    with pytest.raises(TaskFailed):
        _app(persister, [1, 2, 3, 4], "sequential").run()
    assert CALLS == [1, 2, 3, 4]
    CALLS.clear()
    with pytest.raises(TaskFailed):
        _app(persister, [1, 2, 3, 4], "sequential").run()
    assert CALLS == [4]


XS = []


@action(reads=["x"], writes=["y"])
def cube_failing_at_3(state):
    if state["x"] == 3:
        raise ValueError("x=3 is broken")
    return state.update(y=state["x"] ** 3)


class Fan(MapStates):
    """States from outside the application (a global list here, a file or a query in real life)."""

    reads, writes = [], ["ys"]

    def action(self):
        return cube_failing_at_3

    def states(self, state):
        for x in XS:
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(ys=sorted((s["x"], s["y"]) for s in states))


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes"])
def test_resume_map_whose_task_states_changed_recomputes_them(tmp_path, executor, shutdown_processes):
    """Same positions, same action, but the states a MapStates yields changed: no saved result is reused."""
    persister = SQLitePersister(tmp_path / "runs.db")

    def build():
        return (
            ApplicationBuilder()
            .with_actions(fan=Fan())
            .with_persister(persister)
            .initialize_from(persister, default_state={}, default_entrypoint="fan")
            .with_executor(executor)
            .with_identifiers(app_id="a")
            .build()
        )

    XS[:] = [1, 2, 3]
    with pytest.raises(TaskFailed):
        build().run()
    XS[:] = [7, 8, 9]
    assert build().run()[2]["ys"] == [(7, 343), (8, 512), (9, 729)]
