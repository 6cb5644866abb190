"""Running one action on one state, with its reads/writes contract enforced.

The action sees only a view of the state (its declared keys), so a read of an
undeclared key fails with a message naming the action. What it returns is
checked against its declared writes, then merged into the full state in one
derivation. Sync and async share everything but the call itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from nbflow.core.actions import Action, ApplicationContext, check_function_result, declared
from nbflow.core.state import State, _Scope, apply_changes, known_keys, written_by
from nbflow.errors import ActionContractError, ActionReturnTypeError

__all__ = ["StepOutcome", "execute_step", "aexecute_step", "run_step", "arun_step"]


def _prepare(act: Action, state: State) -> tuple[State, list[str]]:
    reads = declared(act, "reads")
    writes = declared(act, "writes")
    missing = [k for k in reads if k not in state]
    if missing:
        key = missing[0]
        msg = f"Action {act.name!r} reads {key!r}, but the state has no key {key!r}. State keys: {known_keys(state)}. Add {key!r} to the initial state (with_state({key}=...)) or to the writes of an action that runs before {act.name!r}."
        raise ActionContractError(msg)
    scope = _Scope(act.name or type(act).__name__, reads)
    return scope.view(state, (*reads, *writes)), writes


def _finish(
    act: Action, state: State, view: State, new: Any, writes: list[str]
) -> tuple[dict, list[str], State]:
    if not isinstance(new, State):
        msg = f"Action {act.name!r}: update() returned {type(new).__name__}; it must return a State, e.g. `return state.update(**result)`."
        raise ActionReturnTypeError(msg)
    changed, deleted = written_by(view, new)
    undeclared = [k for k in (*changed, *deleted) if k not in writes]
    if undeclared:
        msg = f"Action {act.name!r} wrote {undeclared[0]!r}, which is not among its writes {writes}. Add {undeclared[0]!r} to writes=[...] in its declaration, or stop writing it."
        raise ActionContractError(msg)
    return changed, deleted, apply_changes(state, changed, deleted)


def _check_result(act: Action, result: Any) -> dict:
    if not isinstance(result, Mapping):
        msg = f"Action {act.name!r}: run() returned {type(result).__name__}; it must return a dict of results, which update() then writes into the state."
        raise ActionReturnTypeError(msg)
    return dict(result)


def _outcome(act: Action, view: State, out: Any) -> tuple[dict | None, State]:
    if act.single_step:
        return check_function_result(act, out)
    result = _check_result(act, out)
    return result, act.update(result, view)


class StepOutcome(NamedTuple):
    """What one step did: its result, the new state, and the keys it wrote and deleted."""

    result: dict
    state: State
    written: dict
    deleted: list[str]


def execute_step(
    act: Action,
    state: State,
    inputs: Mapping[str, Any] | None = None,
    context: ApplicationContext | Callable[[], ApplicationContext] | None = None,
) -> StepOutcome:
    """Run a synchronous ``act`` on ``state``.

    For a function action the result is the dict it returned beside its state,
    or else the values of the keys it wrote.
    """
    kwargs = act.resolve_inputs(inputs, context)
    view, writes = _prepare(act, state)
    result, new = _outcome(act, view, act._callable()(view, **kwargs))
    changed, deleted, new_state = _finish(act, state, view, new, writes)
    return StepOutcome(result if result is not None else changed, new_state, changed, deleted)


async def aexecute_step(
    act: Action,
    state: State,
    inputs: Mapping[str, Any] | None = None,
    context: ApplicationContext | Callable[[], ApplicationContext] | None = None,
) -> StepOutcome:
    """`execute_step` for the async API: awaits async actions, runs sync ones inline."""
    kwargs = act.resolve_inputs(inputs, context)
    view, writes = _prepare(act, state)
    out = act._acallable()(view, **kwargs)
    if inspect.isawaitable(out):
        out = await out
    result, new = _outcome(act, view, out)
    changed, deleted, new_state = _finish(act, state, view, new, writes)
    return StepOutcome(result if result is not None else changed, new_state, changed, deleted)


def run_step(
    act: Action, state: State, inputs: Mapping[str, Any] | None = None, context: Any = None
) -> tuple[dict, State]:
    """Run ``act`` on ``state``: ``(result, new_state)``."""
    outcome = execute_step(act, state, inputs, context)
    return outcome.result, outcome.state


async def arun_step(
    act: Action, state: State, inputs: Mapping[str, Any] | None = None, context: Any = None
) -> tuple[dict, State]:
    """`run_step` for the async API."""
    outcome = await aexecute_step(act, state, inputs, context)
    return outcome.result, outcome.state
