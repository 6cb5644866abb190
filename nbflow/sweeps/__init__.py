"""Sweeps: parameter grids, the sweep runner, and results as a live DataFrame.

Importing this package does not import pandas; the DataFrame code loads when a
sweep builds its first frame. `load_results` and the ``df.nbflow`` accessor
live in `nbflow.sweeps.export`.
"""

from nbflow.sweeps.distributions import choice, loguniform, randint, sample, uniform
from nbflow.sweeps.grids import Grid, grid, zipped
from nbflow.sweeps.notebooks import sweep_notebook
from nbflow.sweeps.results import ResultTable, to_dataframe
from nbflow.sweeps.runner import Sweep, sweep
from nbflow.sweeps.search import Search, optimize

__all__ = [
    "Grid", "grid", "zipped", "sample", "uniform", "loguniform", "randint", "choice",
    "Sweep", "sweep", "ResultTable", "to_dataframe", "Search", "optimize",
    "sweep_notebook",
]  # fmt: skip


def __getattr__(name: str):
    # `nbflow.sweeps.live` (deprecated) was reachable as an attribute while the runner imported it.
    if name == "live":
        import importlib

        return importlib.import_module("nbflow.sweeps.live")
    msg = f"module 'nbflow.sweeps' has no attribute {name!r}"
    raise AttributeError(msg)
