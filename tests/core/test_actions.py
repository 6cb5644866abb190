"""Actions: declaration, inputs, bind/with_name, and the reads/writes contract enforced by a step."""

import asyncio
import pickle

import pytest

from nbflow import (
    Action,
    ActionContractError,
    ActionReturnTypeError,
    MissingInputError,
    State,
    action,
)
from nbflow.core.step import arun_step, run_step


@action(reads=["x"], writes=["y"])
def double(state, factor=2):
    return state.update(y=state["x"] * factor)


@action(reads=["prompt"], writes=["answer"])
def ask(state, model):
    return state.update(answer=f"{model}: {state['prompt']}")


class Scale(Action):
    reads = ["x"]
    writes = ["x", "scaled"]

    def run(self, state, by):
        return {"x": state["x"] * by, "scaled": True, "extra": "not written"}


def test_function_action_keeps_its_name_and_is_callable():
    """A decorated function stays callable like the function and is named after it."""
    assert double.name == "double"
    assert double(State(x=3))["y"] == 6
    assert double.__doc__ is None and double.__wrapped__ is double.fn


def test_action_decorator_rejects_a_string_for_reads():
    """reads='x' (a string, not a list) is refused with the correct spelling in the message."""
    with pytest.raises(TypeError, match=r"reads=\['count'\]"):
        action(reads="x", writes=[])


def test_action_inputs_are_split_into_required_and_optional():
    """Parameters after state are inputs: required without a default, optional with one."""
    assert ask.inputs == (["model"], [])
    assert double.inputs == ([], ["factor"])
    assert Scale().inputs == (["by"], [])


def test_action_bind_fixes_inputs_in_a_copy():
    """bind() returns a new action with the input fixed; the original still needs it."""
    gpt = ask.bind(model="gpt")
    assert gpt.inputs == ([], [])
    assert ask.inputs == (["model"], [])
    _, state = run_step(gpt, State(prompt="hi"))
    assert state["answer"] == "gpt: hi"


def test_action_bind_of_an_unknown_input_names_the_known_ones():
    """Binding a name the action does not take lists the inputs it has."""
    with pytest.raises(TypeError, match=r"no input\(s\) \['modle'\].*\['model'\]"):
        ask.bind(modle="gpt")


def test_action_with_name_returns_a_renamed_copy():
    """with_name() leaves the original action's name alone."""
    renamed = double.with_name("twice")
    assert (renamed.name, double.name) == ("twice", "double")


def test_action_missing_input_names_it_and_the_fix():
    """A required input that was not given fails before the action runs, naming it and both fixes."""
    with pytest.raises(MissingInputError) as info:
        run_step(ask, State(prompt="hi"))
    message = str(info.value)
    assert "'ask'" in message and "['model']" in message
    assert "inputs={'model': ...}" in message and ".bind(model=...)" in message


def test_action_ignores_inputs_it_does_not_declare():
    """One inputs dict can serve every step: each action takes only the names it declares."""
    result, state = run_step(double, State(x=1), inputs={"factor": 5, "model": "unused"})
    assert state["y"] == 5 and result == {"y": 5}


def test_action_context_parameter_receives_the_application_context():
    """A parameter named __context gets the ApplicationContext, not an input."""
    from nbflow import ApplicationContext

    @action(reads=[], writes=["where"])
    def where(state, __context):
        return state.update(where=__context.app_id)

    ctx = ApplicationContext(app_id="a1", partition_key=None, sequence_id=0, action_name="where")
    assert where.inputs == ([], [])
    assert run_step(where, State(), context=ctx)[1]["where"] == "a1"


def test_step_reading_a_missing_state_key_names_action_key_and_fix():
    """An action whose declared read is absent from state fails before it runs."""
    with pytest.raises(ActionContractError) as info:
        run_step(double, State(z=1))
    message = str(info.value)
    assert "Action 'double' reads 'x'" in message
    assert "State keys: ['z']" in message
    assert "with_state(x=...)" in message


def test_step_reading_an_undeclared_key_names_the_declared_reads():
    """Reading a key the action did not declare fails even if the full state has it."""

    @action(reads=["a"], writes=["b"])
    def sneaky(state):
        return state.update(b=state["a"] + state["c"])

    with pytest.raises(ActionContractError, match=r"'sneaky' read 'c', which is not among its reads \['a'\]"):
        run_step(sneaky, State(a=1, c=2))


def test_step_writing_an_undeclared_key_names_it_and_the_declared_writes():
    """A write outside writes=[...] is refused and the state is not changed."""

    @action(reads=["a"], writes=["b"])
    def leaky(state):
        return state.update(b=1, c=2)

    before = State(a=1)
    with pytest.raises(
        ActionContractError, match=r"'leaky' wrote 'c', which is not among its writes \['b'\]"
    ):
        run_step(leaky, before)
    assert before == {"a": 1}


def test_step_function_result_is_the_written_values():
    """For a function action, the step result is the dict of keys it wrote."""
    result, state = run_step(double, State(x=4, other=1))
    assert result == {"y": 8}
    assert state == {"x": 4, "other": 1, "y": 8}


def test_step_function_may_return_a_result_beside_the_state():
    """Returning (dict, State) reports that dict as the step's result."""

    @action(reads=["x"], writes=["x"])
    def inc(state):
        return {"old": state["x"]}, state.update(x=state["x"] + 1)

    assert run_step(inc, State(x=1)) == ({"old": 1}, State(x=2))


def test_step_function_returning_a_dict_suggests_state_update():
    """The common mistake of returning a dict gets a hint to wrap it in state.update."""

    @action(reads=[], writes=["y"])
    def wrong(state):
        return {"y": 1}

    with pytest.raises(ActionReturnTypeError, match=r"'wrong' returned dict.*state\.update\(\*\*result\)"):
        run_step(wrong, State())


def test_step_class_action_writes_only_declared_keys_from_run():
    """The default update() writes the run() results that are declared writes, ignoring the rest."""
    result, state = run_step(Scale().with_name("scale"), State(x=2), inputs={"by": 3})
    assert result == {"x": 6, "scaled": True, "extra": "not written"}
    assert state == {"x": 6, "scaled": True}


def test_step_class_action_run_must_return_a_dict():
    """run() returning a non-dict names the action and what it must return."""

    class Bad(Action):
        reads, writes = [], []

        def run(self, state):
            return 3

    with pytest.raises(ActionReturnTypeError, match=r"'bad': run\(\) returned int; it must return a dict"):
        run_step(Bad().with_name("bad"), State())


def test_step_delete_of_a_declared_key_removes_it():
    """An action may wipe a key it declares as a write."""

    @action(reads=["tmp"], writes=["tmp"])
    def clean(state):
        return state.wipe(delete=["tmp"])

    assert run_step(clean, State(tmp=1, keep=2))[1] == {"keep": 2}


def test_step_append_to_a_declared_write_sees_its_current_value():
    """A write key that already exists is visible to the action, so append extends it."""

    @action(reads=[], writes=["log"])
    def log(state):
        return state.append(log="b")

    assert run_step(log, State(log=["a"]))[1]["log"] == ["a", "b"]


def test_step_returning_a_fresh_state_counts_every_changed_key_as_written():
    """An action that builds a new State is held to its writes like one that derives it."""

    @action(reads=["a"], writes=["b"])
    def rebuild(state):
        return State(a=state["a"], b=2)

    assert run_step(rebuild, State(a=1, z=0))[1] == {"a": 1, "b": 2, "z": 0}


def test_arun_step_awaits_async_actions_and_runs_sync_ones():
    """The async path runs both kinds of action."""

    @action(reads=["x"], writes=["y"])
    async def slow_double(state):
        await asyncio.sleep(0)
        return state.update(y=state["x"] * 2)

    assert slow_double.is_async and not double.is_async
    assert asyncio.run(arun_step(slow_double, State(x=2)))[1]["y"] == 4
    assert asyncio.run(arun_step(double, State(x=2)))[1]["y"] == 4


def test_action_survives_pickling_with_its_bound_inputs():
    """Module-level actions pickle with their name and bound inputs, for process executors."""
    copy = pickle.loads(pickle.dumps(ask.bind(model="m").with_name("asked")))
    assert copy.name == "asked"
    assert run_step(copy, State(prompt="p"))[1]["answer"] == "m: p"
