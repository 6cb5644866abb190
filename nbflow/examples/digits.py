"""Tune a support vector machine on scikit-learn's handwritten digits with an nbflow application.

Four actions run in a line: ``load`` reads the digits scikit-learn ships (1,797
images of 8x8 pixels, no download), ``sweep`` cross-validates an RBF-kernel
``SVC`` at every point of a grid over ``C`` and ``gamma`` (a `Sweep`, so the
points run in parallel into a DataFrame), ``pick`` takes the most accurate
point, and ``report`` sums it up in a sentence.

Everything is seeded (the folds are shuffled with a fixed ``random_state``, and
an SVC's fit has no randomness), so the scores are the same on every run.

Needs scikit-learn: ``pip install 'nbflow[examples]'``.

Example:
    >>> from nbflow.examples import digits
    >>> app = digits.build(digits.QUICK_GRID, progress=False)
    >>> _, _, state = app.run(halt_after=["report"])
    >>> sorted(state["best"])
    ['C', 'accuracy', 'accuracy_std', 'gamma']
"""

from __future__ import annotations

import functools
import os
from typing import Any

from nbflow import Application, ApplicationBuilder, Grid, MultiThreadedExecutor, Sweep, action, grid
from nbflow.errors import MissingDependencyError

__all__ = [
    "GRID", "QUICK_GRID", "FOLDS", "SEED", "load_data", "cross_validate", "cross_validate_reporting",
    "build", "table",
]  # fmt: skip

# gamma is on the scale of the pixels, which load_data maps to [0, 1]. The grid spans
# underfitting (small C and gamma) to the plateau near 99 %, and avoids the large gammas
# where every training image becomes a support vector and a fit takes seconds.
GRID = grid(C=[0.3, 1, 3, 10, 30], gamma=[0.01, 0.03, 0.1, 0.3])
QUICK_GRID = grid(C=[1, 10], gamma=[0.01, 0.1])
FOLDS = 5
SEED = 0


def _sklearn() -> None:
    # Every scikit-learn module the example uses, imported at once by `load`: the first points
    # of a sweep would otherwise pay for the imports, queued on the import lock, in their times.
    try:
        import sklearn.datasets
        import sklearn.model_selection
        import sklearn.svm  # noqa: F401
    except ImportError:
        msg = "The digits example needs scikit-learn, which is not installed. Install it with `pip install 'nbflow[examples]'` (scripts/demo does this for you)."
        raise MissingDependencyError(msg) from None


@functools.cache
def load_data() -> tuple[Any, Any]:
    """The digits as ``(X, y)``: 1,797 rows of 64 pixel values scaled to [0, 1], and labels 0-9.

    Loaded once per process and shared by the threads of a sweep, which only read it.

    Raises:
        MissingDependencyError: scikit-learn is not installed.
    """
    _sklearn()
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    # Pixels are 0..16 in the data set. Scaled to [0, 1], the RBF kernel's gamma has the usual
    # meaning for unit-scaled features, and the grid's values read like those of any such sweep.
    return images / 16.0, labels


def cross_validate(C: float, gamma: float, kernel: str = "rbf") -> dict[str, float]:
    """Mean and spread of an ``SVC(C, gamma, kernel)``'s accuracy over ``FOLDS`` shuffled, stratified folds.

    Args:
        C: the SVM's penalty for misclassified training points.
        gamma: the RBF kernel's inverse width, on pixels scaled to [0, 1] (the polynomial and
            sigmoid kernels' scale).
        kernel: scikit-learn's kernel name: ``"rbf"``, ``"poly"``, ``"sigmoid"`` or ``"linear"``.

    Returns:
        ``{"accuracy": mean, "accuracy_std": standard deviation}`` over the folds.

    Example:
        >>> round(cross_validate(C=3, gamma=0.1)["accuracy"], 3)
        0.99
    """
    _sklearn()
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.svm import SVC

    images, labels = load_data()
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    # n_jobs stays 1: the sweep already runs one point per core, and nesting pools oversubscribes.
    scores = cross_val_score(SVC(C=C, gamma=gamma, kernel=kernel), images, labels, cv=folds, n_jobs=1)
    return {"accuracy": float(scores.mean()), "accuracy_std": float(scores.std())}


def cross_validate_reporting(C: float, gamma: float) -> dict[str, float]:
    """`cross_validate`, fold by fold, reporting the mean accuracy so far after each fold.

    The reports (``step`` is the fold) let a search prune a point whose first folds are poor
    (``nbflow.optimize(..., prune="median")``) instead of fitting all ``FOLDS``. The scores are
    those of `cross_validate`: the same folds, fitted in the same order.
    """
    _sklearn()
    import numpy as np
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import SVC

    from nbflow import report

    images, labels = load_data()
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    scores: list[float] = []
    for fold, (train, test) in enumerate(folds.split(images, labels)):
        model = SVC(C=C, gamma=gamma).fit(images[train], labels[train])
        scores.append(float(model.score(images[test], labels[test])))
        report(step=fold, accuracy=float(np.mean(scores)))
    return {"accuracy": float(np.mean(scores)), "accuracy_std": float(np.std(scores))}


@action(reads=[], writes=["samples", "features", "classes"])
def load(state):
    images, labels = load_data()
    return state.update(samples=images.shape[0], features=images.shape[1], classes=len(set(labels)))


@action(reads=["results"], writes=["best"])
def pick(state):
    import nbflow.sweeps.export  # noqa: F401  (registers df.nbflow)

    row = state["results"].nbflow.best("accuracy", mode="max")
    best = {
        "C": float(row["C"]),
        "gamma": float(row["gamma"]),
        "accuracy": float(row["accuracy"]),
        "accuracy_std": float(row["accuracy_std"]),
    }
    return state.update(best=best)


@action(reads=["best", "results", "samples", "classes"], writes=["summary"])
def report(state):
    best, results = state["best"], state["results"]
    ok = int((results["status"] == "ok").sum())
    summary = f"best of {ok}/{len(results)} points: C={best['C']:g}, gamma={best['gamma']:g} with accuracy {best['accuracy']:.3f} ± {best['accuracy_std']:.3f} ({FOLDS}-fold cross-validation on {state['samples']} images of {state['classes']} digits)"
    return state.update(summary=summary)


def build(
    points: Grid | None = None,
    *,
    executor: Any = "threads",
    progress: Any = True,
    live: bool = True,
) -> Application:
    """The application ``load → sweep → pick → report`` over ``points`` (by default `GRID`).

    Args:
        points: the grid of ``C`` and ``gamma`` values to cross-validate.
        executor: where the points run. ``"threads"`` means one thread per core: libsvm
            fits without holding the GIL, so threads run the points in parallel and share
            the loaded data, where each worker process would import scikit-learn and load
            it again. (nbflow's own threads default, cores + 4, suits I/O; CPU-bound fits
            would only crowd each other.) Any other executor name or object is used as is.
        progress: a tqdm bar in the terminal or a widget in Jupyter (True), none
            (False), or a tqdm-like class.
        live: in Jupyter, redraw the table of results so far while the sweep runs.

    Returns:
        The application; run it with ``app.run(halt_after=["report"])``. Its
        state then holds ``results`` (the DataFrame), ``best`` and ``summary``.

    Example:
        >>> _, _, state = build(QUICK_GRID, progress=False).run(halt_after=["report"])
        >>> state["best"]["C"], state["best"]["gamma"]
        (10.0, 0.1)
    """
    if executor == "threads":
        executor = MultiThreadedExecutor(max_concurrency=os.cpu_count() or 1)
    sweep = Sweep(cross_validate, points or GRID, executor=executor, progress=progress, live=live)
    return (
        ApplicationBuilder()
        .with_actions(load=load, sweep=sweep, pick=pick, report=report)
        .with_transitions(("load", "sweep"), ("sweep", "pick"), ("pick", "report"))
        .with_entrypoint("load")
        .with_identifiers(app_id="digits")
        .build()
    )


def table(results: Any, decimals: int = 3) -> Any:
    """The sweep's results to read: parameters, scores rounded to ``decimals``, status; best first.

    Durations, attempts and task ids are left out: they change from run to run
    and say nothing about the model.

    Args:
        results: the DataFrame the sweep wrote to ``results``.
        decimals: digits kept after the point in the scores.

    Returns:
        A new DataFrame; ``results`` is not changed.
    """
    columns = ["C", "gamma", "accuracy", "accuracy_std", "status"]
    if results["error"].notna().any():
        columns.append("error")
    # Sorted before rounding, so the first row is the one `pick` chose; the stable sort keeps
    # grid order among exactly equal scores.
    ranked = results[columns].sort_values("accuracy", ascending=False, kind="stable", ignore_index=True)
    return ranked.round({"accuracy": decimals, "accuracy_std": decimals})
