"""Types registered with register_serde in a notebook are known in worker processes too."""

import pytest

from nbflow import ApplicationBuilder, MapStates, SQLitePersister, action
from nbflow.persistence.serde import register_serde, unregister_serde

NOTEBOOK = '''
class Money:
    """A notebook type nbflow's serde does not know until it is registered."""

    def __init__(self, cents):
        self.cents = cents

    def __eq__(self, other):
        return isinstance(other, Money) and other.cents == self.cents

    def __repr__(self):
        return f"Money({self.cents})"


@action(reads=["x"], writes=["price"])
def price(state):
    return state.update(price=Money(state["x"] * 100))


class Prices(MapStates):
    reads, writes = [], ["prices"]

    def action(self):
        return price

    def states(self, state):
        for x in [1, 2, 3]:
            yield state.update(x=x)

    def reduce(self, state, states):
        return state.update(prices=sorted((s["price"].cents for s in states)))
'''


@pytest.fixture
def notebook():
    """A namespace defined the way a notebook cell defines one (so worker processes get it by value)."""
    namespace = {"__name__": "__main__", "action": action, "MapStates": MapStates}
    exec(NOTEBOOK, namespace)
    register_serde(namespace["Money"], tag="money", encode=lambda m: m.cents, decode=namespace["Money"])
    yield namespace
    unregister_serde(namespace["Money"])


@pytest.mark.parametrize("executor", ["processes", "threads"])
def test_serde_registration_reaches_worker_processes(notebook, tmp_path, executor, shutdown_processes):
    """Persisted tasks on processes store a notebook-registered type instead of failing with advice to register it."""
    persister = SQLitePersister(tmp_path / "runs.db")
    app = (
        ApplicationBuilder()
        .with_actions(prices=notebook["Prices"](executor=executor))
        .with_persister(persister)
        .with_state()
        .with_entrypoint("prices")
        .build()
    )
    assert app.run()[2]["prices"] == [100, 200, 300]
