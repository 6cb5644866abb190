"""Graphs and GraphBuilder: building, validating, and choosing the next action."""

import pytest

from nbflow import GraphBuilder, GraphError, State, action, default, expr


@action(reads=["n"], writes=["n"])
def tick(state):
    return state.update(n=state["n"] + 1)


@action(reads=["n"], writes=["done"])
def stop(state):
    return state.update(done=True)


def _graph():
    return (
        GraphBuilder()
        .with_actions(tick=tick, stop=stop)
        .with_transitions(("tick", "tick", expr("n < 3")), ("tick", "stop", default))
        .build()
    )


def test_graph_next_action_takes_the_first_matching_transition():
    """Transitions out of an action are tried in order; the first that holds wins."""
    graph = _graph()
    assert graph.next_action("tick", State(n=1)).name == "tick"
    assert graph.next_action("tick", State(n=3)).name == "stop"
    assert graph.next_action("stop", State(n=3)) is None


def test_graph_transition_from_a_list_of_sources():
    """A list of sources adds one transition per source."""
    graph = (
        GraphBuilder().with_actions(tick=tick, stop=stop).with_transitions((["tick", "stop"], "tick")).build()
    )
    assert [(t.source, t.target) for t in graph.transitions] == [("tick", "tick"), ("stop", "tick")]


def test_graph_is_reusable_and_names_its_own_copies():
    """Building names copies of the actions, so one action object can serve two graphs."""
    g1 = GraphBuilder().with_actions(a=tick).build()
    g2 = GraphBuilder().with_actions(b=tick).build()
    assert (g1["a"].name, g2["b"].name, tick.name) == ("a", "b", "tick")


def test_graph_unknown_transition_target_lists_known_actions():
    """A transition to a name that is not an action is caught at build time."""
    builder = GraphBuilder().with_actions(tick=tick).with_transitions(("tick", "stpo"))
    with pytest.raises(GraphError, match=r"target 'stpo' is not an action\. Known actions: \['tick'\]"):
        builder.build()


def test_graph_duplicate_action_name_is_refused():
    """The same name given twice is an error naming it."""
    with pytest.raises(GraphError, match="'tick' is used twice"):
        GraphBuilder().with_actions(tick=tick).with_actions(tick=stop)


def test_graph_plain_function_is_refused_with_the_decorator_hint():
    """An undecorated function gets a pointer to @action."""

    def plain(state):
        return state

    with pytest.raises(TypeError, match=r"'plain' is a plain function; decorate it with @action"):
        GraphBuilder().with_actions(plain=plain)


def test_graph_without_actions_is_refused():
    """An empty graph says how to add actions."""
    with pytest.raises(GraphError, match="no actions"):
        GraphBuilder().build()


def test_graph_bad_transition_shapes_are_refused():
    """A transition must be a 2- or 3-tuple with a Condition third."""
    with pytest.raises(GraphError, match="is \\(source, target\\)"):
        GraphBuilder().with_transitions(("tick",))
    builder = GraphBuilder().with_actions(tick=tick).with_transitions(("tick", "tick", "n > 1"))
    with pytest.raises(GraphError, match=r"when\(\.\.\.\), expr\(\.\.\.\) or default; got str"):
        builder.build()


def test_graph_positional_actions_use_their_names():
    """Named actions may be passed positionally."""
    graph = GraphBuilder().with_actions(tick, stop.with_name("halt")).build()
    assert list(graph.actions) == ["tick", "halt"]


def test_graph_lookup_of_unknown_action_lists_known_ones():
    """graph['x'] for a missing action names the known ones."""
    with pytest.raises(GraphError, match=r"no action 'x'\. Known actions: \['stop', 'tick'\]"):
        _graph()["x"]
