"""Where the live table draws: a Jupyter kernel, but not qtconsole or Spyder (tqdm's rules), nor a script."""

import json
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from nbflow.notebook.live import in_notebook, live_table


def _in_a_kernel(tmp_path) -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import json, nbflow.notebook.live as live\n"
            "print(json.dumps({'live': live.in_notebook(), 'table': live.live_table(lambda: None) is not None}))"
        )
    ]
    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    return json.loads(nb.cells[0].outputs[-1]["text"])


def test_live_table_draws_in_a_jupyter_kernel(tmp_path, monkeypatch):
    """In a real kernel that a notebook front end drives, the live table is made."""
    for name in ("QT_API", "SPYDER_ARGS", "SPYDER_KERNEL_VERSION"):
        monkeypatch.delenv(name, raising=False)
    assert _in_a_kernel(tmp_path) == {"live": True, "table": True}


@pytest.mark.parametrize("variable", ["QT_API", "SPYDER_ARGS"])
def test_live_table_stays_out_of_qtconsole_and_spyder_kernels(tmp_path, monkeypatch, variable):
    """A kernel started by qtconsole (QT_API) or Spyder (SPYDER_*) cannot render widgets: no table."""
    monkeypatch.setenv(variable, "pyqt5")
    assert _in_a_kernel(tmp_path) == {"live": False, "table": False}


def test_live_table_stays_out_of_scripts_and_does_not_import_ipython():
    """In a plain interpreter nothing is drawn, and asking does not load IPython."""
    code = (
        "import sys, nbflow.notebook.live as live\n"
        "print(live.in_notebook(), live.live_table(lambda: None), 'IPython' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "None", "False"]
    assert in_notebook() is False and live_table(lambda: None) is None


def _half_failing(x):
    if x % 2:
        raise ValueError(f"odd {x}")
    return {"n": x * 10, "loss": x / 4}


def test_live_table_shows_counts_of_the_whole_sweep_tints_failed_rows_and_leaves_gaps_blank():
    """'3 of 8 done, 1 failed'; only failed rows tinted; ints stay ints; an ok row shows no error."""
    import re

    from nbflow import sweep
    from nbflow.notebook.live import LiveTable

    df = sweep(_half_failing, {"x": [0, 1, 2]}, progress=False)
    page = LiveTable(lambda: df, total=8).render(df)
    assert page.startswith("<div>3 of 8 done, 1 failed</div>")
    rows = re.findall(r"<tr( style=[^>]*)?>\s*<th>(\d+)</th>(.*?)</tr>", page, re.S)
    assert [(bool(style), int(label)) for style, label, _ in rows] == [(False, 0), (True, 1), (False, 2)]
    cells = {int(label): re.findall(r"<td>(.*?)</td>", body) for _, label, body in rows}
    assert cells[0][:2] == ["0", "0"] and cells[2][:2] == ["2", "20"]  # n is Int64: no "20.0"
    assert "nan" not in page.lower() and "&lt;na&gt;" not in page.lower()
    assert cells[0][cells[0].index("ok") + 1] == ""  # the error of an ok row is blank


def test_live_table_shows_pruned_rows_greyed_not_as_failures():
    import re

    import nbflow
    from nbflow.notebook.live import LiveTable

    def f(x):
        nbflow.report(step=0, loss=x)
        if x == 1:
            raise nbflow.Pruned(0)
        return {"loss": x}

    df = nbflow.sweep(f, {"x": [0, 1, 2]}, progress=False)
    page = LiveTable(lambda: df, total=3).render(df)
    assert page.startswith("<div>3 of 3 done</div>")  # a pruned point is not a failure
    styles = re.findall(r"<tr( style=\"[^\"]*\")?>\s*<th>\d+</th>", page)
    assert [("rgba(107" in style) for style in styles] == [False, True, False]


def test_live_table_tints_the_right_rows_when_it_shows_only_the_last_ones():
    from nbflow import sweep
    from nbflow.notebook.live import LiveTable

    df = sweep(_half_failing, {"x": list(range(7))}, progress=False)
    page = LiveTable(lambda: df, max_rows=3).render(df)
    assert page.startswith("<div>7 done, 3 failed</div>")
    assert page.count("background-color") == 1  # of rows 4, 5, 6 only 5 failed
    assert page.index("background-color") < page.index("<th>5</th>") < page.index("<th>6</th>")


def test_live_table_before_the_first_row_shows_only_the_counts():
    pd = pytest.importorskip("pandas")
    from nbflow.notebook.live import LiveTable

    empty = pd.DataFrame({"x": [], "status": []})
    assert LiveTable(lambda: empty, total=6).render(empty) == "<div>0 of 6 done</div>"


def test_a_plot_that_cannot_be_drawn_leaves_the_rows_and_a_note():
    """The live view never loses the table, nor the sweep its result, to a plotting error."""
    from nbflow.notebook.live import LiveTable

    def broken():
        raise ValueError("odd curves")

    png, note = LiveTable(lambda: None, curves=broken)._safe_plot(None)
    assert png is None and "The plot could not be drawn: ValueError: odd curves" in note
