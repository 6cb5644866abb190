"""%%parallel_map through a real IPython shell: parsing, execution, collection, errors."""

import pytest
from IPython.core.error import UsageError

from nbflow.notebook.magic import CellBody, parse_line


def magic(shell, line, cell):
    """Run a %%parallel_map cell the way a notebook does, returning the cell's value."""
    return shell.run_cell_magic("parallel_map", line, cell)


def test_magic_runs_the_body_per_point_with_the_last_expression_as_result(shell):
    """Each point binds the axis names; the last expression's dict becomes columns."""
    shell.user_ns["scale"] = 10
    df = magic(
        shell, "--no-progress lr=[0.1, 0.2] depth=range(2)", "value = lr * scale + depth\n{'value': value}"
    )
    assert df[["lr", "depth", "value"]].values.tolist() == [
        [0.1, 0, 1.0],
        [0.1, 1, 1.0 + 1],
        [0.2, 0, 2.0],
        [0.2, 1, 3.0],
    ]
    assert shell.user_ns["results"] is df


def test_magic_collect_names_become_columns(shell):
    """--collect a,b takes those names from each point's namespace."""
    df = magic(shell, "--no-progress --collect sq,cube x=[1, 2, 3]", "sq = x * x\ncube = sq * x")
    assert df[["x", "sq", "cube"]].values.tolist() == [[1, 1, 1], [2, 4, 8], [3, 9, 27]]


def test_magic_collect_name_missing_at_a_point_is_an_error_row(shell):
    """A collected name the body did not define at some point gives an error row naming it."""
    df = magic(shell, "--no-progress --collect y x=[1, 2]", "if x > 1:\n    y = x")
    assert list(df["status"]) == ["error", "ok"]
    assert "--collect name 'y' is not defined" in df.loc[0, "error"] and "x=1" in df.loc[0, "error"]


def test_magic_zip_pairs_axes_and_out_names_the_variable(shell):
    """--zip pairs the axes; --out chooses where the DataFrame goes."""
    magic(shell, "--zip --out paired --no-progress a=[1, 2] b=[10, 20]", "a + b")
    assert shell.user_ns["paired"]["result"].tolist() == [11, 22]


def test_magic_axes_may_use_notebook_names_and_spaces(shell):
    """Axis expressions are evaluated in the notebook and may contain spaces and commas."""
    shell.run_cell("import numpy as np\nbase = 3")
    df = magic(shell, "--no-progress lr=np.linspace(0, 1, 3), k=[base, base + 1]", "lr * k")
    assert len(df) == 6 and df["result"].tolist()[-1] == 4.0


def test_magic_body_assignments_do_not_leak_into_the_notebook(shell):
    """Names the body assigns stay local to each point."""
    magic(shell, "--no-progress x=[1]", "leaked = x\nx")
    assert "leaked" not in shell.user_ns


def test_magic_runs_on_processes_with_notebook_functions(shell, shutdown_processes):
    """With --executor processes the body and the notebook functions it calls are shipped with cloudpickle."""
    shell.run_cell("def triple(v):\n    return 3 * v")
    df = magic(
        shell,
        "--executor processes --n-jobs 2 --no-progress x=[1, 2, 3]",
        "import os\n{'y': triple(x), 'pid': os.getpid()}",
    )
    import os

    assert df["y"].tolist() == [3, 6, 9] and os.getpid() not in set(df["pid"])


def test_magic_failures_are_rows_and_on_error_raise_raises(shell):
    """A failing point is an error row by default; --on-error raise stops with TaskFailed."""
    from nbflow import TaskFailed

    df = magic(shell, "--no-progress x=[0, 1]", "1 / x")
    assert list(df["status"]) == ["error", "ok"] and df.loc[0, "error"].startswith("ZeroDivisionError")
    with pytest.raises(TaskFailed, match=r"x=0"):
        magic(shell, "--no-progress --on-error raise --executor sequential x=[0, 1]", "1 / x")


def test_magic_cache_skips_points_on_a_second_run(shell, tmp_path):
    """--cache DIR loads points computed before."""
    magic(shell, f"--no-progress --cache {tmp_path} x=[1, 2]", "x * 2")
    df = magic(shell, f"--no-progress --cache {tmp_path} x=[1, 2, 3]", "x * 2")
    assert list(df["status"]) == ["cached", "cached", "ok"]


def test_magic_unknown_option_shows_the_usage(shell):
    """An unknown option is a UsageError carrying the usage text."""
    with pytest.raises(UsageError, match=r"(?s)unknown option\(s\) \['--fast'\].*Usage: %%parallel_map"):
        magic(shell, "--fast x=[1]", "x")


def test_magic_failing_axis_expression_names_the_axis(shell):
    """An axis whose expression raises is named with the error."""
    with pytest.raises(UsageError, match=r"axis 'lr' = undefined_name \* 2 failed: NameError"):
        magic(shell, "lr=undefined_name * 2", "lr")


def test_magic_non_iterable_axis_names_the_axis(shell):
    """An axis that is not iterable is named (by the grid) with the fix."""
    with pytest.raises(Exception, match=r"'lr'"):
        magic(shell, "--no-progress lr=5", "lr")


def test_magic_duplicate_axis_and_no_axis_are_refused(shell):
    """The same axis twice, or none at all, is a UsageError."""
    with pytest.raises(UsageError, match=r"axis 'x' is given twice"):
        magic(shell, "x=[1] x=[2]", "x")
    with pytest.raises(UsageError, match=r"needs at least one axis"):
        magic(shell, "--no-progress", "1")


def test_magic_empty_axis_gives_an_empty_frame(shell):
    """An empty grid is an empty DataFrame with the right columns."""
    df = magic(shell, "--no-progress x=[]", "x")
    assert len(df) == 0 and "x" in df.columns and "status" in df.columns


def test_parse_line_splits_options_and_axes():
    """Options first, then axes separated by spaces or commas, nested brackets kept whole."""
    options, axes = parse_line("--zip --cache --n-jobs 4 a=[1, (2, 3)], b = dict(k=1) c=range(3)")
    assert options.zip and options.cache is True and options.n_jobs == 4
    assert axes == [("a", "[1, (2, 3)]"), ("b", "dict(k=1)"), ("c", "range(3)")]


def test_cell_body_survives_pickling_and_returns_the_last_expression():
    """CellBody pickles (for processes) and evaluates the last expression per point."""
    import pickle

    body = pickle.loads(pickle.dumps(CellBody("y = x + offset\ny * 2", {"offset": 1}, None)))
    assert body(x=2) == 6


@pytest.mark.parametrize("executor", ["async", "threads", "processes"])
def test_magic_n_jobs_zero_is_refused_by_the_executor(shell, executor):
    """--n-jobs 0 is a UsageError from the executor's own check, not a sweep whose points all cancel."""
    with pytest.raises(
        UsageError,
        match=rf"--executor {executor} --n-jobs 0: .*max_concurrency=\.\.\.\) takes a positive int",
    ):
        magic(shell, f"--no-progress --executor {executor} --n-jobs 0 x=[1, 2]", "x")


def test_magic_records_its_run_under_the_name_given_unless_told_not_to(shell, tmp_path):
    """--name names the run in the store; --no-record records nothing; --store picks the folder."""
    import nbflow

    store = tmp_path / "runs"
    df = magic(shell, f"--no-progress --name lr-scan --store {store} lr=[0.1, 0.2]", "{'loss': lr * 2}")
    listed = nbflow.runs(store)
    assert listed["name"].tolist() == ["lr-scan"] and listed["run_id"][0] == df.attrs["nbflow"]["run_id"]
    magic(shell, f"--no-progress --no-record --store {store} lr=[0.3]", "{'loss': lr * 2}")
    assert len(nbflow.runs(store)) == 1


# -- %sweep_notebook ------------------------------------------------------------------------------


def test_sweep_notebook_magic_runs_a_notebook_per_point_into_a_variable(shell, tmp_path):
    """`%sweep_notebook PATH ... x=xs`: the path first (quoted with spaces), options, then axes."""
    pytest.importorskip("papermill")
    from tests.sweeps.test_notebooks import make_notebook

    notebook = make_notebook(tmp_path, "import nbflow\nnbflow.record('y', x + 1)", name="my point.ipynb")
    shell.user_ns["xs"] = [1, 2, 3]
    shell.run_line_magic(
        "sweep_notebook",
        f"'{notebook}' --executor threads --out found --output-dir {tmp_path / 'out'} --no-progress "
        f"--name nb-run --store {tmp_path / 'runs'} x=xs",
    )
    found = shell.user_ns["found"]
    assert found["y"].tolist() == [2, 3, 4]
    import nbflow

    listed = nbflow.runs(tmp_path / "runs")
    assert listed["name"].tolist() == ["nb-run"] and listed["run_id"][0] == found.attrs["nbflow"]["run_id"]
    assert nbflow.load_run(listed["run_id"][0], store=tmp_path / "runs")["y"].tolist() == [2, 3, 4]


def test_sweep_notebook_magic_needs_the_path_first_and_parses_like_parallel_map():
    from IPython.core.error import UsageError

    from nbflow.notebook.magic import parse_notebook_line

    with pytest.raises(UsageError, match="needs the notebook's path first"):
        parse_notebook_line("x=[1, 2]")
    path, options, axes = parse_notebook_line(
        '"a b.ipynb" --kernel python3 --n-jobs 2 lr=[0.1, 1] depth=range(2)'
    )
    assert path == "a b.ipynb" and options.kernel == "python3" and options.n_jobs == 2
    assert options.executor == "processes"
    assert axes == [("lr", "[0.1, 1]"), ("depth", "range(2)")]
    with pytest.raises(UsageError, match="%sweep_notebook: unknown option"):
        parse_notebook_line("nb.ipynb --collect y x=[1]")
