"""The README's main job: `scripts/demo` sweeps an SVM on the digits and writes results, graph and notebook."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pandas as pd
import pytest

from nbflow import load_results
from nbflow.errors import MissingDependencyError
from nbflow.examples import demo, digits

# The quick grid's best point, as the terminal prints it: the scores are seeded, so they are exact.
BEST_QUICK = "best: C=10, gamma=0.1 with accuracy 0.988 ± 0.005"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `python -m nbflow.examples.demo --quick` run from a folder outside the repository."""
    cwd = tmp_path_factory.mktemp("demo")
    out = cwd / "out" / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "nbflow.examples.demo", "--quick", "--out", str(out)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done, out


def test_demo_prints_the_table_and_the_best_point(quick_run):
    """The terminal shows every point's scores, best first, then the best point."""
    done, _ = quick_run
    lines = done.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("results, best first (4 points")))
    assert lines[header + 1].split() == ["C", "gamma", "accuracy", "accuracy_std", "status"]
    assert lines[header + 2].split() == ["10", "0.10", "0.988", "0.005", "ok"]
    assert len([line for line in lines[header + 2 : header + 6] if line.endswith(" ok")]) == 4
    assert BEST_QUICK in lines


def test_demo_shows_live_progress_on_stderr(quick_run):
    """A tqdm bar counts the points in the terminal while they run."""
    done, _ = quick_run
    assert "4/4" in done.stderr and "ok=4" in done.stderr


def test_demo_writes_parquet_results_with_provenance(quick_run):
    """results.parquet loads back with load_results: four ok rows, the axes and scikit-learn's version."""
    _, out = quick_run
    df = load_results(out / "results.parquet")
    assert len(df) == 4 and set(df["status"]) == {"ok"}
    prov = df.nbflow.provenance
    assert prov["target_name"] == "cross_validate"
    assert prov["executor"] == "threads"
    assert prov["executor_config"].startswith("MultiThreadedExecutor(max_concurrency=")
    assert prov["axes"] == {"C": [1, 10], "gamma": [0.01, 0.1]}
    assert "scikit-learn" in prov["versions"]
    assert df.nbflow.best("accuracy")[["C", "gamma"]].tolist() == [10, 0.1]


def test_demo_writes_csv_with_its_sidecar(quick_run):
    """results.csv is plain CSV any tool reads; its sidecar restores the provenance."""
    _, out = quick_run
    plain = pd.read_csv(out / "results.csv")
    assert list(plain.columns[:4]) == ["C", "gamma", "accuracy", "accuracy_std"]
    assert (out / "results.csv.nbflow.json").is_file()
    assert load_results(out / "results.csv").nbflow.provenance["target_name"] == "cross_validate"


def test_demo_renders_the_graph_as_svg(quick_run):
    """graph.svg is an SVG drawing of the four actions."""
    _, out = quick_run
    svg = (out / "graph.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for name in ("load", "sweep", "pick", "report"):
        assert f">{name}</text>" in svg


def test_demo_executes_the_notebook_with_the_quick_grid(quick_run):
    """digits_demo.ipynb is saved executed: every code cell ran, and the run cell printed the quick grid's best."""
    _, out = quick_run
    nb = nbformat.read(out / "digits_demo.ipynb", as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
    assert any("digits.QUICK_GRID" in cell.source for cell in code)
    printed = "".join(o.get("text", "") for cell in code for o in cell.outputs if o.output_type == "stream")
    assert "best of 4/4 points: C=10, gamma=0.1 with accuracy 0.988 ± 0.005" in printed


def test_demo_writes_dot_source_when_dot_is_missing(tmp_path, monkeypatch, capsys):
    """Without Graphviz's dot the demo keeps the DOT source in graph.gv and says how to install dot."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path, _ = demo._render_graph(digits.build(digits.QUICK_GRID, progress=False), tmp_path)
    assert path.name == "graph.gv" and "digraph" in path.read_text()
    assert "apt-get install graphviz" in capsys.readouterr().out


def test_execute_notebook_quick_needs_a_parameters_cell(tmp_path):
    """--quick on a notebook without a cell tagged 'parameters' fails naming the tag to add."""
    source = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), source)
    with pytest.raises(ValueError, match=r"no cell tagged 'parameters'.*Tag the cell that sets `points`"):
        demo.execute_notebook(source, tmp_path / "out.ipynb", quick=True)


def test_digits_application_picks_the_most_accurate_point():
    """load → sweep → pick → report: best is the quick grid's most accurate point, and the summary says so."""
    _, _, state = digits.build(digits.QUICK_GRID, executor="sequential", progress=False).run(
        halt_after=["report"]
    )
    assert (state["samples"], state["features"], state["classes"]) == (1797, 64, 10)
    assert state["best"]["accuracy"] == state["results"]["accuracy"].max()
    assert state["summary"].startswith("best of 4/4 points: C=10, gamma=0.1 with accuracy 0.988")


def test_digits_table_drops_timings_rounds_scores_and_puts_the_best_first():
    """table() keeps parameters, scores to 3 decimals and status, best first; error only when a point failed."""
    results = pd.DataFrame(
        {
            "C": [1.0, 10.0, 3.0],
            "gamma": [0.1, 0.1, 0.3],
            "accuracy": [0.98712, 0.98844, None],
            "accuracy_std": [0.00412, 0.00471, None],
            "status": ["ok", "ok", "error"],
            "error": [None, None, "ValueError: boom"],
            "attempts": [1, 1, 1],
            "duration_s": [0.31, 0.29, 0.01],
            "task_id": [0, 1, 2],
        }
    )
    shown = digits.table(results)
    assert list(shown.columns) == ["C", "gamma", "accuracy", "accuracy_std", "status", "error"]
    assert shown["accuracy"].tolist()[:2] == [0.988, 0.987] and shown["status"].tolist()[2] == "error"
    assert "error" not in digits.table(results.iloc[:2]).columns


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    """Without scikit-learn the example says to install nbflow's examples extra."""
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'nbflow\[examples\]'"):
        digits.cross_validate(C=1, gamma=0.1)
