"""The Burr parallelism reference's examples, as written: only imports changed, and typos fixed.

Each class and function below is copied from ``burr-parallelism.rst`` and kept as the reference
writes it (the short ``reduce(self, states)`` that returns the last sub-state, the shadowed loop
variable, ``reads()``/``writes()`` without ``self``). Every change is marked ``# fixed:`` with what
was wrong in the reference: a syntax typo, an undefined name, or a bug that would fail in Burr too.
The examples then run on every executor.
"""

import asyncio
import hashlib
from collections.abc import Callable, Generator
from typing import List  # noqa: UP035  (the reference's own annotations)

import pytest

from nbflow import (
    Action,
    ApplicationBuilder,
    ApplicationContext,
    GraphBuilder,
    MapActions,
    MapStates,
    RunnableGraph,
    State,
    SubGraphTask,
    TaskBasedParallelAction,
    action,
)

PROMPTS = [
    "What is the meaning of life?",
    "What is the airspeed velocity of an unladen swallow?",
    "What is the best way to cook a steak?",
]


def _query_my_llm(prompt, model="default"):
    """The reference leaves this to the reader; a deterministic stand-in."""
    return f"[{model}] {prompt[::-1]}"


@action(reads=[], writes=["prompts"])
def generate_prompts(state: State) -> State:
    """'not defined above, this writes to prompts'."""
    return state.update(prompts=PROMPTS)


# -- Run the same action over different states -----------------------------------------------------


@action(reads=["prompt"], writes=["llm_output"])
def query_llm_action(state: State) -> State:
    return state.update(llm_output=_query_my_llm(prompt=state["prompt"]))


class TestMultiplePrompts(MapStates):
    __test__ = False  # fixed: not a pytest class (pytest collects names starting with Test)

    def action(self) -> Action | Callable | RunnableGraph:
        # make sure to add a name to the action
        # This is not necessary for subgraphs, as actions will already have names
        return query_llm_action.with_name("query_llm_action")

    def states(self, state: State) -> Generator[State, None, None]:
        for prompt in [
            "What is the meaning of life?",
            "What is the airspeed velocity of an unladen swallow?",
            "What is the best way to cook a steak?",
        ]:
            yield state.update(prompt=prompt)

    def reduce(self, states: Generator[State, None, None]) -> State:
        all_llm_outputs = []
        for state in states:
            all_llm_outputs.append(state["llm_output"])
        return state.update(all_llm_outputs=all_llm_outputs)

    def reads() -> List[str]:  # noqa: UP006
        return ["prompts"]

    def writes() -> List[str]:  # noqa: UP006
        return ["all_llm_outputs"]


def multiple_prompts_app(executor):
    return (
        ApplicationBuilder()
        .with_actions(  # fixed: the reference writes with_action
            prompt_generator=generate_prompts,  # not defined above, this writes to prompts
            multi_prompt_test=TestMultiplePrompts(ordered=True),  # fixed: ordered, to compare a list
        )
        .with_transitions(
            ("prompt_generator", "multi_prompt_test"),
        )
        .with_entrypoint("prompt_generator")  # fixed: the reference builds without an entrypoint
        .with_executor(executor)
        .build()
    )


# -- Run different actions over the same state -----------------------------------------------------


# fixed: the reference also reads "model", which nothing writes: the model is an input (bound below)
@action(reads=["prompt"], writes=["llm_output"])
def query_llm(state: State, model: str) -> State:
    # TODO -- implement _query_my_llm to call litellm or something
    return state.update(llm_output=_query_my_llm(prompt=state["prompt"], model=model))


class TestMultipleModels(MapActions):
    __test__ = False

    def actions(self, state: State) -> Generator[Action | Callable | RunnableGraph, None, None]:
        # make sure to add a name to the action
        # This is not necessary for subgraphs, as actions will already have names
        for action in [  # noqa: UP028, F402  (as written: it shadows the decorator)
            query_llm.bind(model="gpt-4").with_name("gpt_4_answer"),
            query_llm.bind(model="o1").with_name("o1_answer"),
            query_llm.bind(model="claude").with_name("claude_answer"),
        ]:  # fixed: missing colon
            yield action

    def state(self, state: State) -> State:  # fixed: a doubled colon
        return state.update(prompt="What is the meaning of life?")

    def reduce(self, states: Generator[State, None, None]) -> State:
        all_llm_outputs = []
        for state in states:
            all_llm_outputs.append(state["llm_output"])
        return state.update(all_llm_outputs=all_llm_outputs)

    def reads() -> List[str]:  # noqa: UP006
        return ["prompts"]

    def writes() -> List[str]:  # noqa: UP006
        return ["all_llm_outputs"]


# -- Subgraphs -------------------------------------------------------------------------------------


@action(reads=["prompt"], writes=["processed_prompt"])
def process_prompt(state: State) -> State:
    processed_prompt = (
        f"The user has asked: {state['prompt']}. Please respond directly to that prompt, but only in riddles."
    )
    return state.update(
        processed_prompt=processed_prompt,  # fixed: the reference writes prompt=, not its declared write
    )


@action(reads=["processed_prompt"], writes=["llm_output"])
def query_llm_processed(state: State, model: str = "default") -> State:
    return state.update(llm_output=_query_my_llm(prompt=state["processed_prompt"], model=model))


graph = (
    GraphBuilder()
    .with_actions(  # fixed: with_action
        process_prompt=process_prompt,
        query_llm=query_llm_processed,  # fixed: the reference names an undefined `query`
    )
    .with_transitions(("process_prompt", "query_llm"))
    .build()
)

runnable_graph = RunnableGraph(graph=graph, entrypoint="process_prompt", halt_after="query_llm")


class TestMultiplePromptsWithSubgraph(MapStates):
    __test__ = False

    def action(self) -> Action | Callable | RunnableGraph:
        return runnable_graph

    def states(self, state: State) -> Generator[State, None, None]:
        for prompt in [
            "What is the meaning of life?",
            "What is the airspeed velocity of an unladen swallow?",
            "What is the best way to cook a steak?",
        ]:
            yield state.update(prompt=prompt)

    # fixed: "... # same as above" spelled out
    def reduce(self, states: Generator[State, None, None]) -> State:
        all_llm_outputs = []
        for state in states:
            all_llm_outputs.append(state["llm_output"])
        return state.update(all_llm_outputs=all_llm_outputs)

    def reads() -> List[str]:  # noqa: UP006
        return ["prompts"]

    def writes() -> List[str]:  # noqa: UP006
        return ["all_llm_outputs"]


class TestMultiplePromptsWithInputs(TestMultiplePromptsWithSubgraph):
    """Passing inputs: states() yields (state, inputs)."""

    __test__ = False

    def states(self, state: State) -> Generator[State, None, None]:
        for prompt in [
            "What is the meaning of life?",
            "What is the airspeed velocity of an unladen swallow?",
            "What is the best way to cook a steak?",
        ]:
            yield state.update(prompt=prompt), {"model": "gpt-4"}  # pass in the model as an input


# -- Full cartesian product ------------------------------------------------------------------------


class TestMultipleModelsProduct(MapActions):  # as written: MapActions with a states() of its own
    __test__ = False

    def actions(self, state: State) -> Generator[Action | Callable | RunnableGraph, None, None]:
        for action in [  # noqa: UP028, F402
            query_llm.bind(model="gpt-4").with_name("gpt_4_answer"),
            query_llm.bind(model="o1").with_name("o1_answer"),
            query_llm.bind(model="claude").with_name("claude_answer"),
        ]:  # fixed: missing colon
            yield action

    def states(self, state: State) -> Generator[State, None, None]:
        for prompt in [
            "What is the meaning of life?",
            "What is the airspeed velocity of an unladen swallow?",
            "What is the best way to cook a steak?",
        ]:
            yield state.update(prompt=prompt)

    def reduce(self, states: Generator[State, None, None]) -> State:
        all_llm_outputs = []
        for state in states:
            all_llm_outputs.append(
                {
                    "output": state["llm_output"],
                    # fixed: the reference reads state["model"], which no action writes; the task says it
                    "model": state.task.action,
                    "prompt": state["prompt"],
                }
            )
        return state.update(all_llm_outputs=all_llm_outputs)

    def reads() -> List[str]:  # noqa: UP006
        return ["prompts"]

    def writes() -> List[str]:  # noqa: UP006
        return ["all_llm_outputs"]


# -- Lower-level API -------------------------------------------------------------------------------


class MultipleTaskExample(TaskBasedParallelAction):
    def tasks(self, state: State, context: ApplicationContext) -> Generator[SubGraphTask]:  # fixed: self
        for prompt in state["prompts"]:
            for action in [  # noqa: F402
                query_llm.bind(model="gpt-4").with_name("gpt_4_answer"),
                query_llm.bind(model="o1").with_name("o1_answer"),
                query_llm.bind(model="claude").with_name("claude_answer"),
            ]:  # fixed: missing colon
                yield SubGraphTask(
                    action=action,  # can be a RunnableGraph as well
                    state=state.update(prompt=prompt),
                    inputs={},
                    # stable hash -- up to you to ensure uniqueness
                    # fixed: Burr's context has app_id, and sha256 takes bytes
                    application_id=hashlib.sha256(
                        (context.app_id + action.name + prompt).encode()
                    ).hexdigest(),
                    # a few other parameters -- see advanced usage -- failure conditions, etc...
                )

    # fixed: the reference leaves reduce, reads and writes out of this example
    def reduce(self, state: State, states: Generator[State, None, None]) -> State:
        return state.update(answers=sorted(s["llm_output"] for s in states))

    reads = ["prompts"]
    writes = ["answers"]


def _app(step, executor, **state):
    return (
        ApplicationBuilder()
        .with_actions(step=step)
        .with_state(**state)
        .with_entrypoint("step")
        .with_executor(executor)
        .build()
    )


def _run(app, use_async):
    return asyncio.run(app.arun())[2] if use_async else app.run()[2]


EXECUTORS = ["sequential", "threads", "processes", "async"]


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("use_async", [False, True], ids=["run", "arun"])
def test_verbatim_map_states_short_reduce(executor, use_async, shutdown_processes):
    """The first example, short reduce and all: every prompt answered, in order, into all_llm_outputs."""
    final = _run(multiple_prompts_app(executor), use_async)
    assert final["all_llm_outputs"] == [_query_my_llm(p) for p in PROMPTS]
    assert set(final) == {"prompts", "all_llm_outputs"}  # the sub-states' keys stay out


@pytest.mark.parametrize("executor", EXECUTORS)
def test_verbatim_map_actions(executor, shutdown_processes):
    """Three models over one prompt, through the short reduce."""
    final = _app(TestMultipleModels(ordered=True), executor, prompts=PROMPTS).run()[2]
    assert final["all_llm_outputs"] == [_query_my_llm(PROMPTS[0], m) for m in ["gpt-4", "o1", "claude"]]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_verbatim_subgraph_and_inputs(executor, shutdown_processes):
    """The sub-graph example, and the same with (state, inputs) pairs."""
    plain = _app(TestMultiplePromptsWithSubgraph(ordered=True), executor, prompts=PROMPTS).run()[2]
    with_inputs = _app(TestMultiplePromptsWithInputs(ordered=True), executor, prompts=PROMPTS).run()[2]
    assert len(plain["all_llm_outputs"]) == 3 and plain["all_llm_outputs"][0].startswith("[default]")
    assert all(out.startswith("[gpt-4]") for out in with_inputs["all_llm_outputs"])


@pytest.mark.parametrize("executor", EXECUTORS)
def test_verbatim_cartesian_product(executor, shutdown_processes):
    """Every model on every prompt: nine outputs, models outer, as Burr orders them."""
    final = _app(TestMultipleModelsProduct(ordered=True), executor, prompts=PROMPTS).run()[2]
    got = [(row["model"], row["prompt"]) for row in final["all_llm_outputs"]]
    assert got == [(m, p) for m in ["gpt_4_answer", "o1_answer", "claude_answer"] for p in PROMPTS]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_verbatim_lower_level_tasks(executor, shutdown_processes):
    """The task-level example: every model on every prompt, under its own stable application id."""
    final = _app(MultipleTaskExample(), executor, prompts=PROMPTS).run()[2]
    assert len(final["answers"]) == 9
