"""`Input` and `Result`: actions that only move values between inputs, the state and a step's result.

Both are Apache Burr's convenience actions, under the same names and with the same
behaviour: ``Input("x")`` writes the run's input ``x`` into the state; ``Result("x")``
gives state values out as the step's result and changes nothing.
"""

from __future__ import annotations

import functools
from typing import Any

from nbflow.core.actions import Action, _InputSpec
from nbflow.core.state import State
from nbflow.errors import MissingInputError

__all__ = ["Input", "Result"]


class Input(Action):
    """Writes the inputs ``fields`` into the state, unchanged.

    Example:
        >>> Input("lr", "depth").with_name("take").run(State(), lr=0.1, depth=3)
        {'lr': 0.1, 'depth': 3}
    """

    def __init__(self, *fields: str) -> None:
        self.fields = list(fields)
        self.reads: list[str] = []
        self.writes = list(fields)

    @functools.cached_property
    def _inputs(self) -> _InputSpec:
        return _InputSpec(tuple(self.fields), (), False, None)

    def run(self, state: State, **inputs: Any) -> dict:
        missing = [f for f in self.fields if f not in inputs]
        if missing:
            msg = f"Action {self.name!r} (Input) needs input {missing[0]!r}; pass it with app.run(inputs={{{missing[0]!r}: ...}})."
            raise MissingInputError(msg)
        return {f: inputs[f] for f in self.fields}

    def update(self, result: dict, state: State) -> State:
        return state.update(**result)


class Result(Action):
    """Gives the state values of ``fields`` as the step's result; the state is left as it was.

    Example:
        >>> Result("loss").with_name("report").run(State(loss=0.25, lr=0.1))
        {'loss': 0.25}
    """

    def __init__(self, *fields: str) -> None:
        self.fields = list(fields)
        self.reads = list(fields)
        self.writes: list[str] = []

    def run(self, state: State, **inputs: Any) -> dict:
        return {f: state[f] for f in self.fields}

    def update(self, result: dict, state: State) -> State:
        return state
