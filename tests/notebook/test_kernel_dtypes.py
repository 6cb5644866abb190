"""In a real Jupyter kernel, with the live table on, a sweep's dtypes are the same as in a script."""

import json

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = [
    "import nbflow, nbflow.notebook.live, json",
    "def train(x):\n"
    "    if x < 3:\n"
    "        raise ValueError('the first points fail')\n"
    "    return {'loss': x / 10, 'epochs': x}",
    "df = nbflow.sweep(train, {'x': list(range(8))}, executor=EXECUTOR)",
    "print(json.dumps({'dtypes': df.dtypes.astype(str).to_dict(),"
    " 'best': int(df.nbflow.best('loss', mode='min')['x']),"
    " 'live': nbflow.notebook.live.in_notebook()}))",
]


@pytest.mark.parametrize("executor", ["sequential", "threads"])
def test_kernel_dtypes_with_live_table_match_a_script(tmp_path, executor):
    """First finished points failing, live table on: loss is float64, epochs Int64, and best() works."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.replace("EXECUTOR", repr(executor))) for c in CELLS]
    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    printed = [o["text"] for o in nb.cells[-1].outputs if o.get("name") == "stdout"]
    seen = json.loads(printed[-1])
    assert seen["live"] is True
    assert seen["dtypes"]["loss"] == "float64" and seen["dtypes"]["epochs"] == "Int64"
    assert seen["best"] == 3
