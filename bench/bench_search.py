"""nbflow.optimize against a grid, random sampling and Optuna's own optimize loop.

Three questions, each answered side by side in one run:

1. Search quality: how many evaluations TPE needs to come within 1% of the best value a grid
   finds, against the grid's own count, with random sampling on the same budget as the
   baseline. On a noiseless 2-D bowl plus a categorical, and on the digits SVM of the demo
   (log-space C and gamma). Medians over 5 seeds.
2. Pruning: on a simulated learning-curve task (20 epochs, bad points bad early), the best
   point found and the epochs spent with prune="median" and "asha", against no pruning.
3. Overhead: nbflow's wall time per trial against ``optuna.create_study().optimize(f,
   n_trials, n_jobs=2)``, on 1 ms trials (threads) and on 20 ms CPU-bound trials
   (``executor="processes"`` against Optuna's threads), interleaved, medians of 5 rounds.

Run it with ``scripts/bench search`` (about 4 minutes).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import optuna
from _common import format_table

import nbflow
from nbflow import choice, loguniform, uniform

optuna.logging.set_verbosity(optuna.logging.WARNING)
SEEDS = range(5)
QUIET = {"progress": False, "live": False}


# -- 1. search quality ----------------------------------------------------------------------------


def bowl(x: float, y: float, kind: str) -> dict:
    """A noiseless bowl with its bottom at (1.3, -0.7) and 'b' best, plus an offset so 1% means something."""
    return {"loss": 1.0 + (x - 1.3) ** 2 + (y + 0.7) ** 2 + {"a": 0.5, "b": 0.0, "c": 1.0}[kind]}


BOWL_SPACE = {"x": uniform(-4, 4), "y": uniform(-4, 4), "kind": choice(["a", "b", "c"])}
BOWL_GRID = nbflow.grid(
    x=[-4 + 8 * i / 9 for i in range(10)], y=[-4 + 8 * i / 9 for i in range(10)], kind=["a", "b", "c"]
)


def evaluations_to_reach(values: list[float], target: float, mode: str) -> int | None:
    """How many evaluations, in order, until one is at least as good as ``target``; None if never."""
    for i, value in enumerate(values, start=1):
        if value == value and (value <= target if mode == "min" else value >= target):
            return i
    return None


def quality(name: str, target_fn, space: dict, grid, metric: str, mode: str, budget: int, **options) -> list:
    grid_df = nbflow.sweep(target_fn, grid, **QUIET, **options)
    best = grid_df[metric].min() if mode == "min" else grid_df[metric].max()
    runs = {}
    for sampler in ("tpe", "random"):
        runs[sampler] = [
            nbflow.optimize(
                target_fn, space, n_trials=budget, metric=metric, mode=mode, sampler=sampler, seed=seed,
                executor="sequential", **QUIET,
            ).sort_values("task_id")[metric].tolist()
            for seed in SEEDS
        ]  # fmt: skip
    rows = []
    # Within 1% of the grid's best value (the target), and within 0.1%, which tells more where
    # most of the space is within 1% (the digits SVM).
    for tolerance in (0.01, 0.001):
        target = best * (1 + tolerance) if mode == "min" else best * (1 - tolerance)
        for sampler, values in runs.items():
            needed = [evaluations_to_reach(v, target, mode) for v in values]
            found = [min(v) if mode == "min" else max(v) for v in values]
            reached = [n for n in needed if n is not None]
            median = statistics.median(n if n is not None else math.inf for n in needed)
            rows.append(
                [
                    name,
                    f"{tolerance:.1%}",
                    sampler,
                    f"{len(grid)}",
                    f"{best:.4g}",
                    f"{statistics.median(found):.4g}",
                    f"{len(reached)}/{len(needed)}",
                    "never" if median == math.inf else f"{median:g}",
                    "-" if median == math.inf else f"{median / len(grid):.2f}",
                ]
            )
    return rows


# -- 2. pruning -----------------------------------------------------------------------------------

EPOCHS = 20


def learning_curve(lr: float, width: int) -> dict:
    """A loss that falls with each epoch toward a floor set by the point; bad points are bad early."""
    floor = (math.log10(lr) + 2.0) ** 2 + (0.0 if width == 64 else 0.2)
    loss = floor
    for epoch in range(EPOCHS):
        loss = floor + 2.0 / (epoch + 1)
        nbflow.report(step=epoch, loss=loss)
    return {"loss": loss}


def pruning() -> list:
    space = {"lr": loguniform(1e-4, 1), "width": choice([16, 64, 256])}
    rows, full_epochs = [], None
    for prune in (None, "median", "asha"):
        bests, epochs = [], []
        for seed in SEEDS:
            df = nbflow.optimize(
                learning_curve,
                space,
                n_trials=40,
                metric="loss",
                prune=prune,
                seed=seed,
                executor="sequential",
                **QUIET,
            )
            bests.append(df.nbflow.best("loss", mode="min")["loss"])
            epochs.append(len(df.nbflow.curves()))
        spent = statistics.median(epochs)
        full_epochs = full_epochs or spent
        rows.append(
            [
                str(prune),
                f"{statistics.median(bests):.4f}",
                f"{max(bests):.4f}",
                f"{spent:g}",
                f"{spent / full_epochs:.0%}",
            ]
        )
    return rows


# -- 3. overhead ----------------------------------------------------------------------------------


def sleep_1ms(x: float) -> float:
    time.sleep(0.001)
    return x * x


def busy_20ms(x: float) -> float:
    # The thread's own CPU time: process_time() would count the other trial's thread too.
    end = time.thread_time() + 0.02
    total = 0.0
    while time.thread_time() < end:
        total += math.sin(x)
    return x * x


def optuna_run(fn, n_trials: int) -> float:
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    started = time.perf_counter()
    study.optimize(lambda t: fn(t.suggest_float("x", -1, 1)), n_trials=n_trials, n_jobs=2)
    return time.perf_counter() - started


def nbflow_run(fn, n_trials: int, executor: str) -> float:
    started = time.perf_counter()
    nbflow.optimize(
        fn,
        {"x": uniform(-1, 1)},
        n_trials=n_trials,
        metric="result",
        seed=0,
        executor=executor,
        n_jobs=2,
        **QUIET,
    )
    return time.perf_counter() - started


def overhead() -> list:
    rows = []
    nbflow_run(busy_20ms, 4, "processes")  # start the worker processes before timing
    for label, fn, n_trials, executor in (
        ("1 ms sleep, threads", sleep_1ms, 200, "threads"),
        ("20 ms CPU, processes", busy_20ms, 100, "processes"),
    ):
        ours, theirs = [], []
        for _ in range(5):  # interleaved: both see the same state of the machine
            ours.append(nbflow_run(fn, n_trials, executor))
            theirs.append(optuna_run(fn, n_trials))
        a, b = statistics.median(ours), statistics.median(theirs)
        rows.append(
            [
                label,
                f"{n_trials}",
                f"{a / n_trials * 1e3:.2f}",
                f"{b / n_trials * 1e3:.2f}",
                f"{a / b:.2f}x",
                f"{b / a:.2f}x",
            ]
        )
    return rows


def main() -> None:
    print(f"optuna {optuna.__version__}, nbflow {nbflow.__version__}, python {sys.version.split()[0]}\n")
    print(
        "1. Search quality: evaluations until one comes within 1% (and 0.1%) of the grid's best, median over 5 seeds\n"
    )
    from nbflow.examples import digits

    digits.load_data()
    rows = quality("2-D bowl + categorical", bowl, BOWL_SPACE, BOWL_GRID, "loss", "min", budget=300)
    rows += quality(
        "digits SVM",
        digits.cross_validate,
        {"C": loguniform(0.1, 100), "gamma": loguniform(0.003, 1)},
        digits.GRID,
        "accuracy",
        "max",
        budget=20,
        executor="threads",
        n_jobs=2,
    )
    header = [
        "task",
        "within",
        "sampler",
        "grid evals",
        "grid best",
        "found",
        "reached",
        "evals needed",
        "of grid's",
    ]
    print(format_table(header, rows, left=3))
    print("\n2. Pruning: 40 trials of a 20-epoch learning curve (median over 5 seeds)\n")
    header = ["prune", "best loss (median)", "best loss (worst seed)", "epochs (median)", "of no pruning"]
    print(format_table(header, pruning(), left=1))
    print(
        "\n3. Overhead: wall time per trial, nbflow.optimize vs Optuna's optimize(n_jobs=2), medians of 5 interleaved rounds\n"
    )
    header = ["trials", "n", "nbflow ms/trial", "optuna ms/trial", "nbflow/optuna", "optuna/nbflow"]
    print(format_table(header, overhead(), left=1))


if __name__ == "__main__":
    main()
