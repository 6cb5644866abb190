"""Tasks sent to worker processes: plain points go by plain pickle, the rest by value, and each arrives whole.

Plain pickle is five times cheaper than cloudpickle but sends classes and functions by reference,
which a worker cannot load when they were defined in the notebook. Points of plain values take the
cheap road; a point or a result holding a notebook object must still arrive as it was.
"""

from __future__ import annotations

import pickle

import pytest

from nbflow import (
    InMemoryPersister,
    LocalTracker,
    Sweep,
    action,
    grid,
)
from nbflow.core.actions import ApplicationContext
from nbflow.errors import TaskPicklingError
from nbflow.parallel.shipping import Packer, run_shipped
from nbflow.parallel.tasks import SubGraphTask

NOTEBOOK = '''
class Box:
    """A class defined in the notebook: a worker knows it only if it travels by value."""

    def __init__(self, v):
        self.v = v

    def __eq__(self, other):
        return type(other).__name__ == "Box" and other.v == self.v


def unbox(box, k):
    return {"v": box.v * k, "made": Box(box.v + k), "fn": (lambda: box.v)}
'''


@pytest.fixture
def notebook():
    namespace = {"__name__": "__main__"}
    exec(NOTEBOOK, namespace)
    return namespace


def test_points_holding_notebook_objects_and_results_holding_them_cross_to_workers(
    notebook, shutdown_processes
):
    """A notebook class in the grid goes by value; a notebook class or lambda in a result comes back by value."""
    Box = notebook["Box"]
    df = Sweep(
        notebook["unbox"], grid(box=[Box(1), Box(2)], k=[10, 20]), executor="processes", progress=False
    ).run()
    assert df["status"].tolist() == ["ok"] * 4
    assert df["v"].tolist() == [10, 20, 20, 40]
    assert [b.v for b in df["made"]] == [11, 21, 12, 22]
    assert [fn() for fn in df["fn"]] == [1, 1, 2, 2]


def test_plain_points_are_packed_with_plain_pickle_and_others_by_value(notebook):
    """What the packer sends for a plain point loads with pickle alone; a point of a notebook object needs cloudpickle."""
    from nbflow.sweeps.runner import _target_graph

    graph = _target_graph(lambda x: x, ["x"])
    packer = Packer("s", ApplicationContext(app_id="parent"), 0, 0.0)
    plain = SubGraphTask(action=graph, state={"x": 3.5})
    plain.index, plain.application_id = 0, "a0"
    blob = packer.pack(plain)[3]
    assert pickle.loads(blob)[0] == {"x": 3.5}
    odd = SubGraphTask(action=graph, state={"x": notebook["Box"](1)})
    odd.index, odd.application_id = 1, "a1"
    shipped = pickle.loads(packer.pack(odd)[3])[0]  # cloudpickle's output loads with pickle, by value
    assert type(shipped["x"]).__name__ == "Box" and shipped["x"].v == 1


def test_the_shared_context_is_pickled_once_and_a_task_of_its_own_keeps_its_own(tmp_path):
    """Tasks that share the step's context share one pickle of it; a task with its own tracker gets its own."""
    from nbflow.sweeps.runner import _target_graph

    graph = _target_graph(lambda x: x, ["x"])
    parent = ApplicationContext(app_id="parent")
    packer = Packer("s", parent, 0, 0.0)
    tasks = [SubGraphTask(action=graph, state={"x": i}) for i in range(3)]
    tasks[2].tracker = LocalTracker("own", storage_dir=str(tmp_path))
    for i, task in enumerate(tasks):
        task.index, task.application_id = i, f"a{i}"
    contexts = [pickle.loads(packer.pack(t)[3])[4] for t in tasks]
    assert contexts[0] == contexts[1] and contexts[0][1] is not None  # the step's token
    assert contexts[2][1] is None and pickle.loads(contexts[2][0]).tracker is not None
    # And each runs in a worker's shoes, with the context it was given.
    for task in tasks:
        index, out = run_shipped(*packer.pack(task))
        assert index == task.index and pickle.loads(out).error is None


def test_a_context_that_cannot_be_pickled_is_an_error_naming_the_action_and_the_fix():
    import threading

    from nbflow.sweeps.runner import _target_graph

    class LockedPersister:
        def __init__(self):
            self.lock = threading.Lock()

    packer = Packer("my_sweep", ApplicationContext(app_id="p", persister=LockedPersister()), 0, 0.0)
    task = SubGraphTask(action=_target_graph(lambda x: x, ["x"]), state={"x": 1})
    task.index, task.application_id = 0, "a0"
    with pytest.raises(TaskPicklingError, match=r"'my_sweep'.*persister and tracker.*executor='threads'"):
        packer.pack(task)


def _scaled(factor):
    """An action named ``scale`` that multiplies by ``factor``: the same name, edited code."""

    @action(reads=["x"], writes=["y"])
    def scale(state):
        return state.update(y=state["x"] * factor)

    return scale


def test_what_a_worker_saved_for_an_earlier_step_never_answers_a_later_one():
    """A fresh in-memory persister pickles as the last one did. A worker must not hand a later step
    the copy, with the steps saved in it, that an earlier step left behind: that would be the old
    code's result for the new code's task, under the same task id."""
    found = []
    for factor in (2, 3):
        packer = Packer("ys", ApplicationContext(app_id="same-app", persister=InMemoryPersister()), 0, 0.0)
        task = SubGraphTask(action=_scaled(factor), state={"x": 5})
        task.index, task.application_id = 0, "task-0"
        _, blob = run_shipped(*packer.pack(task))  # in this process, as a worker would
        outcome = pickle.loads(blob)
        found.append((outcome.changes[0]["y"], outcome.resumed))
    assert found == [(10, False), (15, False)]
