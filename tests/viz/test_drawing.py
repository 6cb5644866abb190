"""Drawings of graphs and applications: nodes, edges, labels, clusters, files, and a missing `dot`."""

import itertools
import os
import shutil

import graphviz
import pytest

from nbflow import (
    ApplicationBuilder,
    GraphBuilder,
    GraphError,
    MapStates,
    MissingDependencyError,
    RunConcurrent,
    RunnableGraph,
    Sweep,
    action,
    default,
    expr,
    grid,
    when,
)
from nbflow.viz import DotNotFoundError, Drawing, visualize


@action(reads=["n"], writes=["n"])
def tick(state):
    return state.update(n=state["n"] + 1)


@action(reads=["n"], writes=["done"])
def stop(state):
    return state.update(done=True)


@action(reads=["lr"], writes=["features"])
def prep(state):
    return state.update(features=[state["lr"]])


@action(reads=["features"], writes=["loss"])
def fit(state):
    return state.update(loss=state["features"][0] ** 2)


@action(reads=["lr"], writes=["loss"])
def train(state):
    return state.update(loss=state["lr"] ** 2)


def _loop():
    return (
        GraphBuilder()
        .with_actions(tick=tick, stop=stop)
        .with_transitions(("tick", "tick", expr("n < 3")), ("tick", "stop", default))
        .build()
    )


def _pipeline():
    graph = GraphBuilder().with_actions(prep=prep, fit=fit).with_transitions(("prep", "fit")).build()
    return RunnableGraph(graph, entrypoint="prep", halt_after="fit", name="pipeline")


class PipelineMap(MapStates):
    reads, writes = ["lrs"], ["best"]

    def action(self):
        return _pipeline()

    def states(self, state):
        for lr in state["lrs"]:
            yield state.update(lr=lr)

    def reduce(self, state, states):
        return state.update(best=min(s["loss"] for s in states))


class StateDependentMap(MapStates):
    reads, writes = ["lrs"], ["best"]

    def action(self, state):
        raise AssertionError("drawing must not call a hook that needs the state")

    def states(self, state):
        yield state

    def reduce(self, state, states):
        return state.update(best=0)


def _positions(drawing):
    """Node name -> (x, y) as laid out by the real `dot`, from its plain output."""
    found = {}
    for line in drawing.pipe(format="plain", encoding="utf-8").splitlines():
        parts = line.split()
        if parts and parts[0] == "node":
            found[parts[1].strip('"')] = (float(parts[2]), float(parts[3]))
    return found


def test_visualize_graph_draws_actions_and_labels_conditional_edges():
    """Each action is a node; a conditional transition is labelled with Condition.name, `default` is not."""
    source = _loop().visualize().source
    assert "\ttick [label=tick" in source and "\tstop [label=stop" in source
    assert "\ttick -> tick [label=\"'n < 3'\"]" in source
    assert "\ttick -> stop\n" in source


def test_visualize_without_conditions_leaves_every_edge_unlabelled():
    """show_conditions=False draws the transitions with no labels."""
    source = _loop().visualize(show_conditions=False).source
    assert "\ttick -> tick\n" in source and "label=\"'n < 3'\"" not in source


def test_visualize_combined_conditions_read_as_their_name():
    """when() and combined conditions are labelled by their names."""
    graph = (
        GraphBuilder()
        .with_actions(tick=tick, stop=stop)
        .with_transitions(("tick", "stop", when(n=3) | ~expr("n < 2")))
        .build()
    )
    assert "label=\"(n=3) or (not ('n < 2'))\"" in graph.visualize().source


def test_visualize_show_state_keys_lists_reads_and_writes():
    """show_state_keys=True puts each action's reads and writes under its name."""
    source = _loop().visualize(show_state_keys=True).source
    assert 'stop [label="stop\\nreads: n\\nwrites: done"' in source


def test_visualize_application_marks_its_entrypoint():
    """An application's drawing points a start marker at the action it starts from."""
    app = ApplicationBuilder().with_graph(_loop()).with_state(n=0).with_entrypoint("tick").build()
    app.run(halt_after=["stop"])
    source = app.visualize().source
    assert '"%start" [label="" shape=point' in source and '"%start" -> tick' in source


def test_visualize_graph_entrypoint_must_be_an_action():
    """A graph's entrypoint= naming no action fails with the known actions."""
    with pytest.raises(GraphError, match=r"'tik'.*Known actions: \['stop', 'tick'\]"):
        _loop().visualize(entrypoint="tik")


def test_visualize_returns_a_digraph_that_jupyter_shows_as_svg():
    """The drawing is a graphviz.Digraph whose Jupyter repr is an SVG made by the real dot."""
    drawing = _loop().visualize()
    assert isinstance(drawing, graphviz.Digraph)
    bundle = drawing._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"] and ">tick</text>" in bundle["image/svg+xml"]


def test_visualize_map_draws_its_sub_graph_as_a_cluster_with_fan_out_and_in():
    """A MapStates whose action() takes no arguments shows that sub-graph in a cluster, with edges out and back."""
    app = (
        ApplicationBuilder()
        .with_actions(tune=PipelineMap(), stop=stop)
        .with_transitions(("tune", "stop"))
        .with_state(lrs=[0.1], n=0)
        .with_entrypoint("tune")
        .build()
    )
    source = app.visualize().source
    assert "subgraph cluster_tune {" in source and "tune [label=tune" in source and "shape=box3d" in source
    assert '"tune/prep" -> "tune/fit"' in source
    assert 'tune -> "tune/prep" [arrowhead=crow style=dashed]' in source
    assert '"tune/fit" -> tune [arrowhead=empty constraint=false style=dashed]' in source
    assert "tune -> stop" in source


def test_visualize_map_whose_action_needs_the_state_draws_a_generic_tasks_node():
    """A map whose action() takes arguments is not called; a generic "tasks" node stands in."""
    graph = GraphBuilder().with_actions(tune=StateDependentMap()).build()
    source = graph.visualize().source
    assert '"tune/%tasks" [label=tasks style=dashed]' in source
    assert 'tune -> "tune/%tasks"' in source


def test_visualize_sweep_draws_its_target_graph():
    """A Sweep in an application shows the graph each point runs."""
    sweep = Sweep(_pipeline(), grid(lr=[0.1, 0.2]), progress=False, name="search")
    app = ApplicationBuilder().with_actions(search=sweep).with_entrypoint("search").build()
    source = app.visualize().source
    assert "subgraph cluster_search {" in source and '"search/prep" -> "search/fit"' in source


def test_visualize_run_concurrent_draws_its_branches_side_by_side():
    """RunConcurrent branches sit in one cluster at the same height; a branch of several actions gets its own frame."""
    both = RunConcurrent(
        "both", items=[train, _pipeline()], merge={"loss": lambda values, before: min(values)}
    )
    app = ApplicationBuilder().with_actions(both=both).with_state(lr=0.1).with_entrypoint("both").build()
    drawing = app.visualize()
    source = drawing.source
    assert "subgraph cluster_both {" in source and 'subgraph "cluster_both/pipeline" {' in source
    assert 'both -> "both/train/train"' in source and 'both -> "both/pipeline/prep"' in source
    assert '"both/pipeline/fit" -> both' in source
    at = _positions(drawing)
    assert at["both/train/train"][1] == at["both/pipeline/prep"][1]
    assert at["both/train/train"][0] != at["both/pipeline/prep"][0]


def test_visualize_nested_map_draws_a_cluster_inside_a_cluster():
    """A map inside a sub-graph gets its own cluster within its parent's."""
    inner = GraphBuilder().with_actions(tune=PipelineMap()).build()
    outer = RunConcurrent("outer", items=[RunnableGraph(inner, "tune", "tune", name="inner"), train])
    source = GraphBuilder().with_actions(outer=outer).build().visualize().source
    assert 'subgraph "cluster_outer/inner/tune" {' in source
    assert '"outer/inner/tune/prep" -> "outer/inner/tune/fit"' in source


def test_visualize_names_that_look_like_html_ports_or_paths_render_as_written():
    """Action names with ':', '/', '<...>' and backslashes reach the picture unchanged."""
    names = ["a:b", "a/b", "<b>bold</b>", "back\\slash"]
    graph = (
        GraphBuilder()
        .with_actions(**{n: tick for n in names})
        .with_transitions(*itertools.pairwise(names))
        .build()
    )
    svg = graph.visualize().pipe(format="svg", encoding="utf-8")
    for text in ["a:b", "a/b", "&lt;b&gt;bold&lt;/b&gt;", "back\\slash"]:
        assert f">{text}</text>" in svg
    assert len(_positions(graph.visualize())) == 4


@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_visualize_output_file_is_rendered_in_the_format_asked(tmp_path, fmt, magic):
    """output_file= with format= writes exactly that file, rendered by the real dot."""
    target = tmp_path / "flow.out"
    drawing = _loop().visualize(target, format=fmt)
    assert target.read_bytes().startswith(magic)
    assert isinstance(drawing, Drawing) and sorted(os.listdir(tmp_path)) == ["flow.out"]


def test_visualize_format_defaults_to_the_output_file_suffix(tmp_path):
    """With no format=, a .png file gets a PNG and an unknown suffix gets SVG."""
    _loop().visualize(tmp_path / "flow.png")
    _loop().visualize(tmp_path / "flow.drawing")
    assert (tmp_path / "flow.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "flow.drawing").read_bytes().startswith(b"<?xml")


def test_visualize_unknown_format_names_the_usual_ones():
    """A format Graphviz does not know is refused before anything is drawn."""
    with pytest.raises(ValueError, match=r"format='svgg'.*Use 'svg', 'png' or 'pdf'"):
        _loop().visualize(format="svgg")


def test_visualize_rejects_what_is_not_a_graph_or_application():
    """Anything else is a TypeError naming what it got."""
    with pytest.raises(TypeError, match="draws a Graph or an Application; got str"):
        visualize("tick")


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    """A PATH on which there is no `dot`: an empty folder (drawing runs nothing else)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("dot") is None


def test_visualize_builds_the_drawing_without_dot(no_dot):
    """Without `dot` the drawing is still built, and its DOT source is complete."""
    source = _loop().visualize().source
    assert source.startswith("digraph nbflow {") and "tick -> stop" in source


def test_visualize_rendering_without_dot_names_the_install_and_keeps_the_source(no_dot, tmp_path):
    """pipe(), render(), the Jupyter repr and output_file= raise DotNotFoundError naming how to install Graphviz."""
    drawing = _loop().visualize()
    attempts = [
        lambda: drawing.pipe(format="svg"),
        lambda: drawing.render(tmp_path / "flow", format="svg"),
        lambda: drawing._repr_mimebundle_(),
        lambda: _loop().visualize(tmp_path / "flow.svg"),
    ]
    for attempt in attempts:
        with pytest.raises(DotNotFoundError) as caught:
            attempt()
        message = str(caught.value)
        for fix in [
            "sudo apt-get install graphviz",
            "brew install graphviz",
            "conda install -c conda-forge graphviz",
        ]:
            assert fix in message
        assert caught.value.source == drawing.source
    assert not (tmp_path / "flow.svg").exists()


def test_dot_not_found_error_is_what_graphviz_and_nbflow_users_catch(no_dot):
    """DotNotFoundError is both graphviz.ExecutableNotFound and nbflow's MissingDependencyError."""
    with pytest.raises(graphviz.ExecutableNotFound):
        _loop().visualize().pipe()
    with pytest.raises(MissingDependencyError):
        _loop().visualize().pipe()


def test_visualize_draws_what_an_action_says_about_itself():
    """A parallel action of the user's own names its sub-graphs (children()) and its label (fan_out)."""
    from nbflow import TaskBasedParallelAction

    class Tournament(TaskBasedParallelAction):
        reads, writes = [], ["winner"]
        fan_out = "each match"

        def children(self):
            return [_pipeline()]

        def tasks(self, state, context, inputs):
            return []

        def reduce(self, state, states):
            return state.update(winner=None)

    source = GraphBuilder().with_actions(cup=Tournament()).build().visualize().source
    assert "cup [label=cup" in source and "shape=box3d" in source
    assert "subgraph cluster_cup {" in source and 'label="each match"' in source
    assert '"cup/prep" -> "cup/fit"' in source


def test_visualize_action_whose_children_fail_draws_a_generic_tasks_node():
    """children() raising means "not known": the drawing shows a tasks node rather than failing."""

    class Broken(StateDependentMap):
        def children(self):
            raise RuntimeError("needs a database")

    source = GraphBuilder().with_actions(tune=Broken()).build().visualize().source
    assert '"tune/%tasks" [label=tasks style=dashed]' in source
