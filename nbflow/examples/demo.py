"""The main job on a built-in example: a hyperparameter sweep of an SVM on scikit-learn's digits.

Runs the `nbflow.examples.digits` application in the terminal with a live
progress bar, prints the results table and the best point, then writes to the
output folder (``out/demo`` unless ``--out`` says otherwise):

- ``results.parquet``: the results with their provenance (``nbflow.load_results`` reads it back);
- ``results.csv`` and ``results.csv.nbflow.json``: the same table as plain CSV, provenance beside it;
- ``graph.svg``: the application's graph (``graph.gv``, its DOT source, if Graphviz's ``dot`` is missing);
- ``digits_demo.ipynb``: ``notebooks/digits_demo.ipynb``, the same experiment, executed.

Everything runs offline: scikit-learn ships the digits. Run it with ``scripts/demo``
(which installs what it needs) or ``python -m nbflow.examples.demo``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nbflow.examples import digits

__all__ = ["NOTEBOOK", "main", "execute_notebook"]

# The notebook lives in the repository, not in the package: a checkout (what scripts/demo
# runs from) has it; an installed wheel does not, and the demo then says so and goes on.
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "digits_demo.ipynb"

# The tag on the notebook cell that sets `points`; a run with --quick overrides it in a cell
# inserted right after (papermill's convention), so the notebook shows the grid that ran.
PARAMETERS_TAG = "parameters"


def execute_notebook(source: Path, target: Path, *, quick: bool = False, timeout_s: int = 600) -> Any:
    """Execute the notebook ``source`` with nbclient and save it, outputs included, to ``target``.

    The kernel runs in ``source``'s folder, as it would when opened in Jupyter.

    Args:
        source: the notebook to run; it is not changed.
        target: where to write the executed copy.
        quick: after the cell tagged ``parameters``, insert one that sets
            ``points = digits.QUICK_GRID``.
        timeout_s: the longest any one cell may run.

    Returns:
        The executed notebook (an ``nbformat.NotebookNode``).

    Raises:
        MissingDependencyError: nbclient, nbformat or ipykernel is not installed.
        ValueError: ``quick`` is set and no cell is tagged ``parameters``.
        nbclient.exceptions.CellExecutionError: a cell raised.
    """
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as exc:
        from nbflow.errors import MissingDependencyError

        msg = f"Executing {source.name} needs nbclient, nbformat and ipykernel ({exc}). Install them with `pip install 'nbflow[examples]'`."
        raise MissingDependencyError(msg) from None
    nb = nbformat.read(source, as_version=4)
    if quick:
        tagged = [
            i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])
        ]
        if not tagged:
            msg = f"{source} has no cell tagged {PARAMETERS_TAG!r}, so --quick cannot set its points. Tag the cell that sets `points` with {PARAMETERS_TAG!r}."
            raise ValueError(msg)
        injected = nbformat.v4.new_code_cell(
            "points = digits.QUICK_GRID  # injected by `python -m nbflow.examples.demo --quick`"
        )
        injected.metadata["tags"] = ["injected-parameters"]
        nb.cells.insert(tagged[0] + 1, injected)
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout_s,
        resources={"metadata": {"path": str(source.parent)}},
        # ipykernel warns at every start that its loopback TCP sockets are unencrypted; in a
        # terminal demo that reads like a problem. Errors still reach stderr.
        extra_arguments=["--log-level=ERROR"],
    ).execute()
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return nb


def _render_graph(app: Any, out: Path) -> tuple[Path, str]:
    from nbflow.viz import DotNotFoundError

    try:
        app.visualize(out / "graph.svg", show_state_keys=True)
        return out / "graph.svg", "the application's graph"
    except DotNotFoundError as exc:
        # The sweep's results matter more than the drawing: keep the DOT source and go on.
        (out / "graph.gv").write_text(exc.source)
        print(f"\nnote: graph.svg not drawn. {exc}")
        return out / "graph.gv", "the graph's DOT source (install Graphviz to draw it)"


def main(argv: list[str] | None = None) -> Any:
    """Run the demo: sweep, print the table and the best point, write the results, graph and notebook.

    Args:
        argv: command-line arguments (``--out DIR``, ``--quick``, ``--executor NAME``);
            by default ``sys.argv[1:]``.

    Returns:
        The application's final `State` (``results``, ``best``, ``summary``, ...).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{len(digits.QUICK_GRID)} points instead of {len(digits.GRID)}"
    )
    parser.add_argument(
        "--executor", default="threads", help="where the points run: threads (default), processes, sequential"
    )
    args = parser.parse_args(argv)
    points = digits.QUICK_GRID if args.quick else digits.GRID
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    print(
        f"nbflow demo: an RBF-kernel SVM on scikit-learn's handwritten digits, {digits.FOLDS}-fold "
        f"cross-validation at {len(points)} points of C x gamma, on {args.executor}"
    )
    app = digits.build(points, executor=args.executor)
    try:
        _, _, state = app.run(halt_after=["report"])
    finally:
        if args.executor == "processes":
            from nbflow import MultiProcessExecutor

            MultiProcessExecutor().shutdown()
    results, best = state["results"], state["best"]

    seconds = results.nbflow.provenance.get("duration_s", float("nan"))
    print(f"\nresults, best first ({len(results)} points in {seconds:.1f} s):")
    print(digits.table(results).to_string(index=False))
    print(
        f"\nbest: C={best['C']:g}, gamma={best['gamma']:g} with accuracy "
        f"{best['accuracy']:.3f} ± {best['accuracy_std']:.3f}"
    )

    written = [
        (results.nbflow.export(out / "results.parquet"), "the results with provenance (nbflow.load_results)"),
        (results.nbflow.export(out / "results.csv"), "the same table as plain CSV"),
        (out / "results.csv.nbflow.json", "the CSV's provenance and dtypes"),
        _render_graph(app, out),
    ]
    if NOTEBOOK.exists():
        print(f"\nexecuting {NOTEBOOK.name} (the same experiment as a notebook) ...")
        target = out / NOTEBOOK.name
        execute_notebook(NOTEBOOK, target, quick=args.quick)
        written.append((target, f"notebooks/{NOTEBOOK.name}, executed"))
    else:
        print(
            f"\nnote: {NOTEBOOK} is not here (it ships with the repository, not the package); not executed."
        )

    print(f"\nwrote {out}/:")
    width = max(len(path.name) for path, _ in written)
    for path, what in written:
        print(f"  {path.name:<{width}}  {what}")
    return state


if __name__ == "__main__":
    main()
