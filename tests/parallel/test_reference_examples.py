"""Every example of the Burr parallelism reference, with nbflow imports and its typos fixed.

Each runs on every executor (sequential, threads, processes, async) through the
sync API, and the async ones also through ``arun``.
"""

import asyncio
import hashlib

import pytest

from nbflow import (
    ApplicationBuilder,
    GraphBuilder,
    MapActions,
    MapActionsAndStates,
    MapStates,
    MultiThreadedExecutor,
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
    return f"[{model}] {prompt[::-1]}"


@action(reads=[], writes=["prompts"])
def generate_prompts(state):
    return state.update(prompts=PROMPTS)


@action(reads=["prompt"], writes=["llm_output"])
def query_llm_action(state):
    return state.update(llm_output=_query_my_llm(prompt=state["prompt"]))


@action(reads=["prompt"], writes=["llm_output"])
def query_llm(state, model):
    return state.update(llm_output=_query_my_llm(prompt=state["prompt"], model=model))


class TestMultiplePrompts(MapStates):
    __test__ = False  # a reference example, not a pytest class

    def action(self):
        return query_llm_action.with_name("query_llm_action")

    def states(self, state):
        for prompt in PROMPTS:
            yield state.update(prompt=prompt)

    def reduce(self, state, states):
        all_llm_outputs = []
        for sub_state in states:
            all_llm_outputs.append(sub_state["llm_output"])
        return state.update(all_llm_outputs=all_llm_outputs)

    def reads(self):
        return ["prompts"]

    def writes(self):
        return ["all_llm_outputs"]


MODELS = ["gpt-4", "o1", "claude"]


class TestMultipleModels(MapActions):
    __test__ = False  # a reference example, not a pytest class

    def actions(self, state):
        for act in [  # noqa: UP028  (kept as the reference writes it)
            query_llm.bind(model="gpt-4").with_name("gpt_4_answer"),
            query_llm.bind(model="o1").with_name("o1_answer"),
            query_llm.bind(model="claude").with_name("claude_answer"),
        ]:
            yield act

    def state(self, state):
        return state.update(prompt="What is the meaning of life?")

    def reduce(self, state, states):
        all_llm_outputs = []
        for sub_state in states:
            all_llm_outputs.append(sub_state["llm_output"])
        return state.update(all_llm_outputs=all_llm_outputs)

    def reads(self):
        return ["prompts"]

    def writes(self):
        return ["all_llm_outputs"]


@action(reads=["prompt"], writes=["processed_prompt"])
def process_prompt(state):
    processed = (
        f"The user has asked: {state['prompt']}. Please respond directly to that prompt, but only in riddles."
    )
    return state.update(processed_prompt=processed)


@action(reads=["processed_prompt"], writes=["llm_output"])
def query_processed(state, model="default"):
    return state.update(llm_output=_query_my_llm(prompt=state["processed_prompt"], model=model))


subgraph = (
    GraphBuilder()
    .with_actions(process_prompt=process_prompt, query_llm=query_processed)
    .with_transitions(("process_prompt", "query_llm"))
    .build()
)
runnable_graph = RunnableGraph(graph=subgraph, entrypoint="process_prompt", halt_after="query_llm")


class TestMultiplePromptsWithSubgraph(TestMultiplePrompts):
    def action(self):
        return runnable_graph


class TestMultiplePromptsWithInputs(TestMultiplePrompts):
    def action(self):
        return runnable_graph

    def states(self, state):
        for prompt in PROMPTS:
            yield state.update(prompt=prompt), {"model": "gpt-4"}


class TestCartesian(MapActionsAndStates):
    __test__ = False  # a reference example, not a pytest class

    def actions(self, state):
        for model in MODELS:
            yield query_llm.bind(model=model).with_name(f"{model}_answer")

    def states(self, state):
        for prompt in PROMPTS:
            yield state.update(prompt=prompt)

    def reduce(self, state, states):
        all_llm_outputs = []
        for sub_state in states:
            all_llm_outputs.append(
                {
                    "output": sub_state["llm_output"],
                    "model": sub_state.task.action,
                    "prompt": sub_state["prompt"],
                }
            )
        return state.update(all_llm_outputs=all_llm_outputs)

    def reads(self):
        return ["prompts"]

    def writes(self):
        return ["all_llm_outputs"]


class MultipleTaskExample(TaskBasedParallelAction):
    reads = ["prompts"]
    writes = ["all_llm_outputs"]

    def tasks(self, state, context):
        for prompt in state["prompts"]:
            for act in [
                query_llm.bind(model="gpt-4").with_name("gpt_4_answer"),
                query_llm.bind(model="o1").with_name("o1_answer"),
                query_llm.bind(model="claude").with_name("claude_answer"),
            ]:
                yield SubGraphTask(
                    action=act,
                    state=state.update(prompt=prompt),
                    inputs={},
                    application_id=hashlib.sha256((context.app_id + act.name + prompt).encode()).hexdigest(),
                )

    def reduce(self, state, states):
        all_llm_outputs = []
        for sub_state in states:
            all_llm_outputs.append({"output": sub_state["llm_output"], "prompt": sub_state["prompt"]})
        return state.update(all_llm_outputs=all_llm_outputs)


def _run(parallel_action, executor_name, use_async=False):
    app = (
        ApplicationBuilder()
        .with_actions(prompt_generator=generate_prompts, multi_prompt_test=parallel_action)
        .with_transitions(("prompt_generator", "multi_prompt_test"))
        .with_entrypoint("prompt_generator")
        .with_executor(executor_name)
        .build()
    )
    if use_async:
        return asyncio.run(app.arun(halt_after=["multi_prompt_test"]))[2]
    return app.run(halt_after=["multi_prompt_test"])[2]


@pytest.mark.parametrize("use_async", [False, True], ids=["run", "arun"])
def test_reference_map_states_runs_one_action_over_each_prompt(executor_name, use_async):
    """MapStates: the same action over three prompts gives three outputs, in completion order."""
    state = _run(TestMultiplePrompts(), executor_name, use_async)
    assert sorted(state["all_llm_outputs"]) == sorted(_query_my_llm(p) for p in PROMPTS)


@pytest.mark.parametrize("use_async", [False, True], ids=["run", "arun"])
def test_reference_map_actions_runs_three_models_over_one_prompt(executor_name, use_async):
    """MapActions: three bound actions over one state give one answer per model."""
    state = _run(TestMultipleModels(), executor_name, use_async)
    prompt = "What is the meaning of life?"
    assert sorted(state["all_llm_outputs"]) == sorted(_query_my_llm(prompt, m) for m in MODELS)


def test_reference_subgraph_runs_as_the_mapped_action(executor_name):
    """A RunnableGraph stands in for an action: two steps per prompt, the output of the second."""
    state = _run(TestMultiplePromptsWithSubgraph(), executor_name)
    expected = [
        _query_my_llm(
            f"The user has asked: {p}. Please respond directly to that prompt, but only in riddles."
        )
        for p in PROMPTS
    ]
    assert sorted(state["all_llm_outputs"]) == sorted(expected)


def test_reference_states_may_yield_inputs(executor_name):
    """Yielding (state, inputs) passes the inputs to the sub-graph's actions."""
    state = _run(TestMultiplePromptsWithInputs(), executor_name)
    assert all(out.startswith("[gpt-4]") for out in state["all_llm_outputs"])
    assert len(state["all_llm_outputs"]) == 3


@pytest.mark.parametrize("use_async", [False, True], ids=["run", "arun"])
def test_reference_cartesian_product_runs_every_model_on_every_prompt(executor_name, use_async):
    """MapActionsAndStates: 3 models x 3 prompts = 9 results, each labelled through .task."""
    state = _run(TestCartesian(), executor_name, use_async)
    got = sorted((o["model"], o["prompt"], o["output"]) for o in state["all_llm_outputs"])
    want = sorted((f"{m}_answer", p, _query_my_llm(p, m)) for m in MODELS for p in PROMPTS)
    assert got == want


def test_reference_lower_level_tasks_keep_their_application_ids(executor_name):
    """TaskBasedParallelAction: 9 SubGraphTasks, with the ids the user derived."""
    seen = []

    class Recording(MultipleTaskExample):
        def reduce(self, state, states):
            states = list(states)
            seen.extend(s.task.application_id for s in states)
            return super().reduce(state, states)

    state = _run(Recording(), executor_name)
    assert len(state["all_llm_outputs"]) == 9
    assert len(set(seen)) == 9 and all(len(app_id) == 64 for app_id in seen)


def test_reference_executor_on_the_action_overrides_the_application():
    """An action's executor() wins over with_executor()."""
    used = []

    class Counting(MultiThreadedExecutor):
        def map_unordered(self, fn, items):
            used.append(self.max_concurrency)
            return super().map_unordered(fn, items)

    class WithExecutor(TestMultiplePrompts):
        def executor(self):
            return Counting(max_concurrency=10)

    state = _run(WithExecutor(), "sequential")
    assert used == [10] and len(state["all_llm_outputs"]) == 3


def test_reference_state_passed_to_reduce_is_the_parallel_actions_view():
    """reduce's state holds the parallel action's declared keys, so it can update them."""
    state = _run(TestMultiplePrompts(), "threads")
    assert state["prompts"] == PROMPTS and isinstance(state, State)
