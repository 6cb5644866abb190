"""`sweep_notebook`: run a parameterised notebook over a grid, in parallel, into one DataFrame.

Each point's parameters are injected with papermill, by its conventions: the cell tagged
``parameters`` declares them, and an injected cell after it sets the point's values. Each
point runs on a fresh kernel, wherever the executor runs it. Inside the notebook,
``nbflow.record(name, value)`` saves a value for the point's row and ``nbflow.report(...)`` a
curve (see `nbflow.parallel.recording`). Every executed notebook is kept, under a name made
from its parameters, and its path is the row's ``notebook`` column.

The cache key is the notebook's code cells (not their outputs), the kernel and the output
folder, plus the parameters: editing a cell's code recomputes, and running an unchanged
notebook again executes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from nbflow.errors import MissingDependencyError, SweepError
from nbflow.parallel.recording import RECORD_TO, read_recorded
from nbflow.parallel.reporting import report
from nbflow.sweeps.grids import Grid, _short
from nbflow.sweeps.runner import Sweep, _as_grid

__all__ = ["sweep_notebook", "NotebookCellError", "NotebookTarget"]

_NAME_MOST = 120


class NotebookCellError(Exception):
    """A cell of a swept notebook raised: which cell, the start of its code, and the kernel's traceback."""

    def __init__(self, message: str, cell: int | None = None) -> None:
        super().__init__(message)
        self.cell = cell

    def __reduce__(self):
        return (NotebookCellError, (self.args[0], self.cell))


def _papermill() -> Any:
    try:
        import papermill
    except ImportError:
        msg = "nbflow.sweep_notebook runs notebooks with papermill: pip install 'nbflow[papermill]'."
        raise MissingDependencyError(msg) from None
    return papermill


@dataclasses.dataclass(frozen=True)
class NotebookTarget:
    """One point of a notebook sweep: run ``path`` with the point's parameters, return its row.

    Its cache key (`__nbflow_fingerprint__`) is the notebook's code (``code``, a digest of its
    code cells), the kernel and the output folder.
    """

    path: str
    code: str
    kernel_name: str
    output_dir: str
    # Where the cell tagged "parameters" is: papermill's injected cell comes after it.
    parameters_cell: int

    __name__ = "notebook"  # the action's name in the sweep's drawings and messages

    def __nbflow_fingerprint__(self) -> dict:
        # Said outright: nbflow digests its own objects by type alone, and a callable with a
        # __name__ by name, either of which would let an edited notebook hit the old results.
        return {"data": (self.code, self.kernel_name, self.output_dir, self.parameters_cell)}

    def __call__(self, **params: Any) -> dict[str, Any]:
        papermill = _papermill()

        _quiet_about_our_parameter()
        output = Path(self.output_dir) / _output_name(Path(self.path).stem, params)
        folder = Path(tempfile.mkdtemp(prefix="nbflow-record-"))
        try:
            try:
                papermill.execute_notebook(
                    self.path,
                    str(output),
                    parameters={**params, RECORD_TO: str(folder)},
                    kernel_name=self.kernel_name,
                    progress_bar=False,
                    # Not papermill's cwd=: it changes the whole process's directory, which two
                    # points on threads then restore out of order. The kernel starts there instead.
                    kernel_manager_class=_private_kernel(folder, Path(self.path).parent),
                )
            except papermill.PapermillExecutionError as exc:
                raise _cell_error(exc, output, self.parameters_cell) from None
            values, reports = read_recorded(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for step, metrics in reports:
            report(step=step, **metrics)  # this point's curve, as if it had reported here
        return {**values, "notebook": str(output)}


def _private_kernel(folder: Path, cwd: Path) -> type:
    """A kernel manager class whose kernels start in ``cwd`` and talk over Unix sockets in ``folder``.

    Not TCP on localhost: other users of the machine cannot reach the kernel, and it does not
    warn on stderr that they could. A class, not an instance, so that nbclient owns (and stops)
    each kernel it starts.
    """
    from jupyter_client.manager import AsyncKernelManager

    class PrivateKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**{"transport": "ipc", "ip": str(folder / "kernel"), **kwargs})

        async def start_kernel(self, **kwargs: Any) -> None:
            await super().start_kernel(**{**kwargs, "cwd": str(cwd)})

    return PrivateKernelManager


def _cell_error(exc: Any, output: Path, parameters_cell: int) -> NotebookCellError:
    # papermill counts the cells of the executed copy, where its injected cell follows the
    # parameters cell; the user's notebook has one cell fewer before the failing one.
    cell = exc.cell_index - 1 if exc.cell_index > parameters_cell else exc.cell_index
    source = " ".join(str(exc.source).split())
    excerpt = source if len(source) <= 80 else source[:77] + "..."
    trace = _ANSI.sub("", "\n".join(exc.traceback or ()))
    msg = f"cell {cell} ({excerpt!r}) raised {exc.ename}: {exc.evalue}. The notebook, run up to that cell, is {output}.\n{trace}"
    return NotebookCellError(msg, cell)


class _NotOurs(logging.Filter):
    """Drops papermill's warning about the parameter nbflow injects itself (the notebook has no use for it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return RECORD_TO not in record.getMessage()


def _quiet_about_our_parameter() -> None:
    logger = logging.getLogger("papermill")
    if not any(isinstance(f, _NotOurs) for f in logger.filters):
        logger.addFilter(_NotOurs())


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def _output_name(stem: str, params: dict) -> str:
    """``train-lr=0.1-depth=3-<hash>.ipynb``: readable, and never two points' the same."""
    parts = "-".join(f"{k}={_UNSAFE.sub('_', _short(v))}" for k, v in params.items())
    readable = f"{stem}-{parts}"[:_NAME_MOST].rstrip("-_")
    digest = hashlib.sha256(repr(sorted((k, repr(v)) for k, v in params.items())).encode()).hexdigest()[:8]
    return f"{readable}-{digest}.ipynb"


def code_digest(notebook: Any) -> str:
    """A digest of the notebook's code cells, in order: not their outputs, ids or metadata."""
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def _checked(path: Any, axes: list[str], kernel_name: str | None) -> tuple[Path, Any, int]:
    """The notebook at ``path``, read, after checking that it can take these parameters."""
    papermill = _papermill()
    import nbformat

    notebook_path = Path(path)
    if not notebook_path.is_file():
        msg = f"sweep_notebook({str(path)!r}): no such notebook. Check the path (it is relative to {Path.cwd()})."
        raise SweepError(msg)
    notebook = nbformat.read(notebook_path, as_version=4)
    tagged = [
        i for i, cell in enumerate(notebook.cells) if "parameters" in cell.get("metadata", {}).get("tags", [])
    ]
    if not tagged:
        msg = f"sweep_notebook({str(path)!r}): the notebook has no cell tagged 'parameters', so there is nowhere to inject a point's values. Tag the cell that sets the defaults (in JupyterLab: the property inspector, Common Tools, Cell Tags) with 'parameters'."
        raise SweepError(msg)
    declared = papermill.inspect_notebook(str(notebook_path))
    unknown = [a for a in axes if a not in declared]
    if unknown:
        msg = f"sweep_notebook({str(path)!r}): the parameters cell does not declare {unknown[0]!r}; it declares {list(declared)}. Add `{unknown[0]} = ...` to the cell tagged 'parameters', or rename the axis."
        raise SweepError(msg)
    if kernel_name is not None:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        try:
            KernelSpecManager().get_kernel_spec(kernel_name)
        except NoSuchKernel:
            installed = sorted(KernelSpecManager().find_kernel_specs())
            msg = f"sweep_notebook(kernel_name={kernel_name!r}): no such kernel is installed; installed are {installed}. Pick one, or install it (python -m ipykernel install --user --name {kernel_name})."
            raise SweepError(msg) from None
    return notebook_path.resolve(), notebook, tagged[0]


def sweep_notebook(
    path: Any,
    points: Grid | dict,
    *,
    executor: Any = "processes",
    n_jobs: int | None = None,
    output_dir: Any = None,
    cache: Any = None,
    progress: Any = True,
    timeout: float | None = None,
    kernel_name: str | None = None,
    on_error: str = "record",
    retries: int = 0,
    **options: Any,
) -> Any:
    """Run the notebook at ``path`` once per point of ``points``; the DataFrame of results.

    Each point's parameters are injected with papermill into a fresh kernel. The row holds the
    parameters, what the notebook saved with ``nbflow.record(name, value)``, a ``notebook``
    column with the path of the executed copy, and status, error and so on as `sweep` makes
    them. A failing cell makes an ``error`` row naming the cell; ``df.nbflow.log(task_id)``
    has the kernel's traceback, and the executed copy stops at that cell.

    Args:
        path: the notebook, with a cell tagged ``parameters``.
        points: a `Grid` (`grid`, `zipped`, `sample`) or a dict of axes.
        output_dir: where the executed notebooks go (created); by default a folder
            ``<notebook name>-runs`` beside the notebook.
        kernel_name: the kernel to run on; by default the notebook's own.
        executor, n_jobs, cache, progress, timeout, on_error, retries, **options: as `sweep`
            takes them. On Dask and Ray each worker starts the kernels, so it needs ipykernel.

    Raises:
        SweepError: before anything runs, for a missing notebook, no ``parameters`` cell, an
            axis the parameters cell does not declare, or a kernel that is not installed.
        MissingDependencyError: papermill is not installed.
    """
    grid = points if isinstance(points, Grid) else _as_grid(points)
    notebook_path, notebook, parameters_cell = _checked(path, grid.axes, kernel_name)
    kernel_name = kernel_name or notebook.metadata.get("kernelspec", {}).get("name") or "python3"
    out = (
        Path(output_dir) if output_dir is not None else notebook_path.with_name(f"{notebook_path.stem}-runs")
    )
    out.mkdir(parents=True, exist_ok=True)
    target = NotebookTarget(
        str(notebook_path), code_digest(notebook), kernel_name, str(out.resolve()), parameters_cell
    )
    return Sweep(
        target,
        grid,
        executor=executor,
        n_jobs=n_jobs,
        cache=cache,
        progress=progress,
        timeout=timeout,
        on_error=on_error,
        retries=retries,
        name=options.pop("name", notebook_path.stem),
        **options,
    ).run()
