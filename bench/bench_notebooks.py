"""nbflow.sweep_notebook on 2 processes against papermill run in a loop, on the same notebook.

The notebook's one cell sleeps 1 s. 16 points, each on a fresh kernel in both. Rounds are
interleaved (papermill loop, nbflow, papermill loop, ...) and the medians compared. The kernel
start-up cost per point is measured apart: the same notebook with a cell that does nothing,
4 points, run through each.

Run it with ``scripts/bench notebooks`` (about 3 minutes).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import nbformat
import papermill
from _common import format_table

import nbflow

POINTS = 16
ROUNDS = 3


def notebook(folder: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    tagged = nbformat.v4.new_code_cell("x = 0")
    tagged.metadata["tags"] = ["parameters"]
    nb.cells = [tagged, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path = folder / f"bench-{abs(hash(body))}.ipynb"
    nbformat.write(nb, path)
    return path


def papermill_loop(path: Path, points: int, out: Path) -> float:
    started = time.perf_counter()
    for x in range(points):
        papermill.execute_notebook(
            str(path), str(out / f"pm-{x}.ipynb"), parameters={"x": x}, progress_bar=False
        )
    return time.perf_counter() - started


def ours(path: Path, points: int, out: Path) -> float:
    started = time.perf_counter()
    df = nbflow.sweep_notebook(
        path,
        {"x": list(range(points))},
        executor="processes",
        n_jobs=2,
        output_dir=out,
        progress=False,
        live=False,
    )
    assert set(df["status"]) == {"ok"}, df["error"].tolist()
    return time.perf_counter() - started


def main() -> None:
    print(
        f"papermill {papermill.__version__}, nbflow {nbflow.__version__}, python {sys.version.split()[0]}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sleepy = notebook(folder, "import time\ntime.sleep(1)")
        empty = notebook(folder, "pass")
        ours(empty, 2, folder / "warm")  # start the worker processes first
        loop, swept = [], []
        for _ in range(ROUNDS):
            loop.append(papermill_loop(sleepy, POINTS, folder))
            swept.append(ours(sleepy, POINTS, folder / "nbflow"))
        start_loop, start_ours = [], []
        for _ in range(ROUNDS):
            start_loop.append(papermill_loop(empty, 4, folder) / 4)
            # One point at a time: what a point costs, not what two workers overlap.
            started = time.perf_counter()
            nbflow.sweep_notebook(empty, {"x": list(range(4))}, executor="processes", n_jobs=1,
                                  output_dir=folder / "s", progress=False, live=False)  # fmt: skip
            start_ours.append((time.perf_counter() - started) / 4)
        nbflow.MultiProcessExecutor().shutdown()
    a, b = statistics.median(swept), statistics.median(loop)
    rows = [
        [f"{POINTS} points, one cell sleeping 1 s", f"{a:.1f} s", f"{b:.1f} s", f"{b / a:.2f}x faster"],
        [
            "per point, a cell that does nothing (kernel start-up and teardown)",
            f"{statistics.median(start_ours):.2f} s",
            f"{statistics.median(start_loop):.2f} s",
            f"{statistics.median(start_ours) / statistics.median(start_loop):.2f}x",
        ],
    ]
    print(format_table(["case", "nbflow, 2 processes", "papermill loop", "ratio"], rows, left=1))
    print(f"\nmedians of {ROUNDS} interleaved rounds; the per-point row runs nbflow one point at a time")


if __name__ == "__main__":
    main()
