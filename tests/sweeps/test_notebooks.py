"""nbflow.sweep_notebook: a parameterised notebook swept over a grid with papermill, into one DataFrame."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import nbflow
from nbflow import SweepError, grid, zipped

pytest.importorskip("papermill")
nbformat = pytest.importorskip("nbformat")

EXAMPLE = Path(__file__).parents[2] / "notebooks" / "examples" / "toy_training.ipynb"
QUIET = {"progress": False, "live": False}


def make_notebook(folder: Path, *cells: str, parameters: str = "x = 1", name: str = "point.ipynb") -> Path:
    """A notebook of ``cells`` after a cell tagged ``parameters``; each run appends to ``runs.txt`` beside it."""
    nb = nbformat.v4.new_notebook()
    tagged = nbformat.v4.new_code_cell(parameters)
    tagged.metadata["tags"] = ["parameters"]
    counter = nbformat.v4.new_code_cell(
        f"with open({str(folder / 'runs.txt')!r}, 'a') as _f:\n    _f.write('run\\n')"
    )
    nb.cells = [nbformat.v4.new_markdown_cell("# a point"), tagged, counter]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path = folder / name
    nbformat.write(nb, path)
    return path


def runs(folder: Path) -> int:
    path = folder / "runs.txt"
    return len(path.read_text().split()) if path.exists() else 0


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_records_become_columns_reports_curves_and_each_executed_notebook_is_kept(
    executor, tmp_path, shutdown_processes
):
    df = nbflow.sweep_notebook(
        EXAMPLE, grid(lr=[0.01, 0.1], epochs=[3]), executor=executor, output_dir=tmp_path, n_jobs=2, **QUIET
    )
    assert df["status"].tolist() == ["ok", "ok"]
    assert df["final_loss"].tolist() == pytest.approx([1 / 3 + 0.5, 1 / 3 + 0.5])
    assert df["losses"].tolist()[0] == pytest.approx([1.5, 1.0, 1 / 3 + 0.5])
    curves = df.nbflow.curves()
    assert len(curves) == 6 and set(curves["step"]) == {0, 1, 2}
    for lr, path in zip(df["lr"], df["notebook"], strict=True):
        kept = nbformat.read(path, as_version=4)
        assert f"lr={lr}" in Path(path).name
        injected = [c for c in kept.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert f"lr = {lr}" in injected[0].source
        assert any(
            o.get("text", "").startswith(f"lr={lr}: final loss")
            for c in kept.cells
            for o in c.get("outputs", [])
        )


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_failing_cell_is_an_error_row_naming_the_cell_and_its_notebook_stops_there(
    executor, tmp_path, shutdown_processes
):
    df = nbflow.sweep_notebook(
        EXAMPLE, zipped(lr=[0.1, 0.1], fail_at=[-1, 1]), executor=executor, output_dir=tmp_path, **QUIET
    )
    assert df["status"].tolist() == ["ok", "error"]
    error = df["error"][1]
    assert "cell 2" in error and "for epoch in range(epochs)" in error
    assert "RuntimeError: diverged at epoch 1 (lr=0.1)" in error
    log = df.nbflow.log(1)
    assert "RuntimeError" in log and "diverged at epoch 1" in log and "\x1b[" not in log
    kept = nbformat.read(df["notebook"][0], as_version=4)
    assert kept  # the ok point's copy
    failed = sorted(p for p in tmp_path.glob("*.ipynb") if "fail_at=1" in p.name)
    assert len(failed) == 1
    cells = nbformat.read(failed[0], as_version=4).cells
    errors = [
        i for i, c in enumerate(cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert len(errors) == 1
    assert all(c.get("execution_count") is None for c in cells[errors[0] + 1 :] if c.cell_type == "code")


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_cache_hit_runs_no_kernel_and_an_edit_to_code_recomputes(executor, tmp_path, shutdown_processes):
    notebook = make_notebook(tmp_path, "import nbflow\nnbflow.record('y', x * 10)")
    cache, out = tmp_path / "cache", tmp_path / "out"
    first = nbflow.sweep_notebook(
        notebook, {"x": [1, 2]}, executor=executor, cache=cache, output_dir=out, **QUIET
    )
    assert first["y"].tolist() == [10, 20] and runs(tmp_path) == 2
    again = nbflow.sweep_notebook(
        notebook, {"x": [1, 2]}, executor=executor, cache=cache, output_dir=out, **QUIET
    )
    assert again["status"].tolist() == ["cached", "cached"] and runs(tmp_path) == 2
    assert again["y"].tolist() == [10, 20] and again["notebook"].tolist() == first["notebook"].tolist()

    # Outputs, markdown and metadata are not code: still cached.
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[0].source = "# a point, described differently"
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="stale output\n")]
    nb.metadata["note"] = "edited"
    nbformat.write(nb, notebook)
    assert set(
        nbflow.sweep_notebook(
            notebook, {"x": [1, 2]}, cache=cache, output_dir=out, executor=executor, **QUIET
        )["status"]
    ) == {"cached"}

    # A code edit recomputes.
    nb.cells[-1].source = "import nbflow\nnbflow.record('y', x * 100)"
    nbformat.write(nb, notebook)
    edited = nbflow.sweep_notebook(
        notebook, {"x": [1, 2]}, executor=executor, cache=cache, output_dir=out, **QUIET
    )
    assert edited["status"].tolist() == ["ok", "ok"] and edited["y"].tolist() == [100, 200]
    assert runs(tmp_path) == 4


def test_records_round_trip_frames_arrays_and_nested_values(tmp_path):
    notebook = make_notebook(
        tmp_path,
        "import numpy as np, pandas as pd, nbflow\n"
        "nbflow.record('frame', pd.DataFrame({'a': [x, x + 1]}))\n"
        "nbflow.record('array', np.arange(3) * x)\n"
        "nbflow.record('nested', {'k': [x, (1, 2)], 'none': None})\n"
        "nbflow.record('nested', {'k': [x, (1, 2)], 'none': None, 'again': True})",
    )
    df = nbflow.sweep_notebook(notebook, {"x": [2]}, executor="threads", output_dir=tmp_path / "out", **QUIET)
    assert df["frame"][0]["a"].tolist() == [2, 3]
    assert df["array"][0].tolist() == [0, 2, 4]
    assert df["nested"][0] == {
        "k": [2, (1, 2)],
        "none": None,
        "again": True,
    }  # the last record of a name wins


def test_record_outside_a_sweep_does_nothing(tmp_path):
    code = "import nbflow; nbflow.record('x', 1); nbflow.record('y', object()); print('fine')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "fine", out.stderr


# -- bad input, before anything runs -------------------------------------------------------------


def test_a_parameter_the_notebook_does_not_declare_is_refused_before_anything_runs(tmp_path):
    notebook = make_notebook(tmp_path, "y = x")
    with pytest.raises(SweepError, match=r"does not declare 'lr'; it declares \['x'\].*Add `lr = \.\.\.`"):
        nbflow.sweep_notebook(notebook, {"x": [1], "lr": [0.1]}, **QUIET)
    assert runs(tmp_path) == 0


def test_a_notebook_without_a_parameters_cell_is_refused(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "plain.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(SweepError, match=r"no cell tagged 'parameters'.*Tag the cell"):
        nbflow.sweep_notebook(path, {"x": [1]}, **QUIET)


def test_a_missing_notebook_is_refused(tmp_path):
    with pytest.raises(SweepError, match="no such notebook"):
        nbflow.sweep_notebook(tmp_path / "nope.ipynb", {"x": [1]}, **QUIET)


def test_a_kernel_that_is_not_installed_is_refused_naming_those_that_are(tmp_path):
    notebook = make_notebook(tmp_path, "y = x")
    with pytest.raises(SweepError, match=r"kernel_name='julia-9'.*installed are \[.*'python3'.*\]"):
        nbflow.sweep_notebook(notebook, {"x": [1]}, kernel_name="julia-9", **QUIET)
    assert runs(tmp_path) == 0


# -- clusters -------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_a_notebook_sweep_runs_on_a_dask_local_cluster(dask_client, tmp_path):
    notebook = make_notebook(
        tmp_path, "import os, nbflow\nnbflow.record('pid', os.getpid())\nnbflow.record('y', x * 2)"
    )
    df = nbflow.sweep_notebook(notebook, {"x": [1, 2]}, executor="dask", output_dir=tmp_path / "out", **QUIET)
    assert df["status"].tolist() == ["ok", "ok"] and df["y"].tolist() == [2, 4]
    assert all(json.loads(Path(p).read_text()) for p in df["notebook"])


def test_points_run_in_the_notebooks_folder_and_leave_the_process_directory_alone(tmp_path, monkeypatch):
    """papermill's cwd= changes the whole process's directory: two points on threads restored it out of order."""
    here = tmp_path / "elsewhere"
    here.mkdir()
    monkeypatch.chdir(here)
    notebook = make_notebook(tmp_path, "import os, nbflow\nnbflow.record('cwd', os.getcwd())")
    df = nbflow.sweep_notebook(
        notebook, {"x": [1, 2, 3, 4]}, executor="threads", n_jobs=4, output_dir=tmp_path / "o", **QUIET
    )
    assert set(df["cwd"]) == {str(tmp_path)}
    assert Path.cwd() == here
