"""%%parallel_map --cache through a real IPython shell: the key covers the cell and what it reads."""

import pytest


def magic(shell, line, cell):
    """Run a %%parallel_map cell the way a notebook does, returning the cell's value."""
    return shell.run_cell_magic("parallel_map", line, cell)


def test_magic_cache_edited_cell_body_computes_again(shell, tmp_path):
    """Editing the cell body (x * 2 -> x * 1000) and running it again gives the new values, not cached ones."""
    assert magic(shell, f"--no-progress --cache {tmp_path} x=[1, 2]", "x * 2")["result"].tolist() == [2, 4]
    df = magic(shell, f"--no-progress --cache {tmp_path} x=[1, 2]", "x * 1000")
    assert df["result"].tolist() == [1000, 2000] and df["status"].tolist() == ["ok", "ok"]


def test_magic_cache_edited_notebook_global_computes_again(shell, tmp_path):
    """A notebook global the body reads, changed between runs, invalidates the cached points."""
    shell.run_cell("factor = 2")
    magic(shell, f"--no-progress --cache {tmp_path} x=[1, 2]", "x * factor")
    shell.run_cell("factor = 1000")
    df = magic(shell, f"--no-progress --cache {tmp_path} x=[1, 2]", "x * factor")
    assert df["result"].tolist() == [1000, 2000] and df["status"].tolist() == ["ok", "ok"]


def test_magic_cache_edited_notebook_function_the_body_calls_computes_again(shell, tmp_path):
    """A notebook function the body calls, redefined between runs, invalidates the cached points."""
    shell.run_cell("def scale(x):\n    return x * 2")
    magic(shell, f"--no-progress --cache {tmp_path} x=[1, 2]", "scale(x)")
    shell.run_cell("def scale(x):\n    return x * 1000")
    df = magic(shell, f"--no-progress --cache {tmp_path} x=[1, 2]", "scale(x)")
    assert df["result"].tolist() == [1000, 2000] and df["status"].tolist() == ["ok", "ok"]


def test_magic_cache_same_cell_and_globals_hit(shell, tmp_path):
    """The same cell over the same globals loads every point, in a fresh namespace too (a restart)."""
    shell.run_cell("factor = 3")
    magic(shell, f"--no-progress --cache {tmp_path} x=[1, 2]", "x * factor")
    shell.run_cell("del factor\nfactor = 3")
    df = magic(shell, f"--no-progress --cache {tmp_path} x=[1, 2]", "x * factor")
    assert df["status"].tolist() == ["cached", "cached"] and df["result"].tolist() == [3, 6]


def test_magic_cache_collect_names_are_in_the_key(shell, tmp_path):
    """--collect a and --collect a,b over the same body are different results, not one cached entry."""
    magic(shell, f"--no-progress --cache {tmp_path} --collect a x=[1]", "a = x\nb = x + 1")
    df = magic(shell, f"--no-progress --cache {tmp_path} --collect a,b x=[1]", "a = x\nb = x + 1")
    assert df[["a", "b"]].values.tolist() == [[1, 2]] and df["status"].tolist() == ["ok"]


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_magic_cache_edit_recomputes_on_each_executor(shell, tmp_path, executor, shutdown_processes):
    """On threads and on processes, an edited global computes again."""
    shell.run_cell("offset = 1")
    magic(shell, f"--no-progress --executor {executor} --cache {tmp_path} x=[1, 2]", "x + offset")
    shell.run_cell("offset = 100")
    df = magic(shell, f"--no-progress --executor {executor} --cache {tmp_path} x=[1, 2]", "x + offset")
    assert df["result"].tolist() == [101, 102] and df["status"].tolist() == ["ok", "ok"]
