"""The hot path of this checkout against an earlier commit, interleaved: did a change move it?

    python bench/compare_commits.py [OLD_REV] [ROUNDS]      # OLD_REV defaults to HEAD~1

Each round runs, in a fresh interpreter per measurement, a sweep of 20,000 trivial points on
`sequential` and on `threads`, once with the old commit's nbflow (a git worktree) and once with
this checkout's, alternating so that a busy moment of a shared machine hits both. It prints the
median microseconds a point and new/old. A second case sweeps points that each call
`nbflow.report` three times, the path live reports added.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POINTS = 20_000
CASES = {
    "plain": "def f(x):\n    return x\n",
    "3 reports": "def f(x):\n    for s in range(3):\n        nbflow.report(step=s, loss=x)\n    return x\n",
}
_TIMED = """
import sys, time, nbflow
{body}
ex = sys.argv[1]
nbflow.sweep(f, {{"x": list(range(500))}}, executor=ex, progress=False)
t = time.perf_counter()
nbflow.sweep(f, {{"x": list(range({points}))}}, executor=ex, progress=False)
print((time.perf_counter() - t) / {points} * 1e6)
"""


def _measure(tree: Path, body: str, executor: str) -> float:
    code = _TIMED.format(body=body, points=POINTS)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", code, executor], capture_output=True, text=True, env=env, check=True
    )
    return float(out.stdout.strip())


def main() -> None:
    old_rev = sys.argv[1] if len(sys.argv) > 1 else "HEAD~1"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory(prefix="nbflow-old-") as folder:
        old = Path(folder) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), old_rev], check=True
        )
        try:
            times: dict[tuple[str, str, str], list[float]] = {}
            for _ in range(rounds):
                for case, body in CASES.items():
                    for executor in ("sequential", "threads"):
                        for name, tree in (("old", old), ("new", ROOT)):
                            times.setdefault((case, executor, name), []).append(
                                _measure(tree, body, executor)
                            )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
    print(f"median µs a point over {rounds} interleaved rounds, {POINTS:,} points; old = {old_rev}")
    print(f"{'case':<12}{'executor':<12}{'old':>8}{'new':>8}{'new/old':>9}")
    for case in CASES:
        for executor in ("sequential", "threads"):
            o = statistics.median(times[(case, executor, "old")])
            n = statistics.median(times[(case, executor, "new")])
            print(f"{case:<12}{executor:<12}{o:>8.1f}{n:>8.1f}{n / o:>9.2f}")


if __name__ == "__main__":
    main()
