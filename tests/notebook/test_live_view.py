"""The live view in a real kernel: a plot of reported curves appears while points run, and a
static summary (counts, rows, final plot as an image) is what the cell keeps.
"""

import nbformat
from nbclient import NotebookClient

# A point waits until the live widget holds a plot: it only finishes if the curves it reported
# were drawn while it still ran. Its deadline is for a broken view, not a timing.
_CELL = """
import time
import nbflow
from ipywidgets.widgets.widget import _instances

def plot_shown():
    return any("data:image/png" in str(getattr(w, "value", "")) for w in list(_instances.values()))

def train(lr):
    for step in range(5):
        nbflow.report(step=step, loss=lr / (step + 1))
    deadline = time.monotonic() + 60
    while not plot_shown() and time.monotonic() < deadline:
        time.sleep(0.02)
    if lr > 1:
        raise ValueError("diverged")
    return {"saw_plot": plot_shown()}

df = nbflow.sweep(train, {"lr": [0.1, 1.0, 2.0]}, executor="threads", progress=False)
df[["lr", "saw_plot", "status"]].to_dict("list")
"""


def test_the_live_view_plots_curves_while_points_run_and_leaves_a_static_summary(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(_CELL)]
    NotebookClient(
        nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = nb.cells[0].outputs
    result = outputs[-1]["data"]["text/plain"]
    assert "'saw_plot': [True, True, None]" in result
    assert "'status': ['ok', 'ok', 'error']" in result
    kinds = [next(iter(o.get("data", {"stream": 0}))) for o in outputs]
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) == 1, kinds
    summaries = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    summary = next(s for s in summaries if s.startswith("<b>"))
    assert "train: 2 ok, 1 error" in summary
    assert "<table" in summary and "diverged" in summary
    assert "duration_s" not in summary  # differs run to run; the frame has it
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1
