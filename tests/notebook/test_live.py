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
