"""`Search` and `optimize`: adaptive search and pruning, with Optuna as the engine.

A search is a sweep whose points are not known ahead: each is asked from an Optuna study
when a worker frees up (at most as many in flight as the executor runs at once), and told
as it finishes, failures and pruned points included. The points run through the sweep's own
machinery, so a search keeps what a sweep has: the live DataFrame, failures as rows,
retries, the cache, and one word to change the executor.

Pruning uses what points report: ``nbflow.report(step=epoch, loss=...)`` reaches the study
as an intermediate value, and a point the pruner judges hopeless gets `nbflow.Pruned`
raised in it at that report (in a worker process, at the report it asked about).

With a cache, the study is kept beside it (an Optuna journal file, keyed on the target's
code, the space and the settings), so running again with a larger ``n_trials`` runs only
the new trials; the finished ones come back from the cache and the sampler learns from them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import numbers
import operator
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from nbflow.core.state import State
from nbflow.errors import MissingDependencyError, SweepError
from nbflow.parallel.tasks import SubGraphTask
from nbflow.sweeps.distributions import Distribution, _Choice, _LogUniform, _RandInt, _Uniform
from nbflow.sweeps.grids import Grid, _freeze, _short
from nbflow.sweeps.runner import Sweep

__all__ = ["Search", "optimize", "SAMPLERS", "PRUNERS"]

SAMPLERS = ("tpe", "random", "cmaes", "qmc", "grid")
PRUNERS = ("median", "asha", "hyperband")
# How many values of a randint axis sampler="grid" will list.
_GRID_MOST = 10_000
_PRIMITIVE = (bool, int, float, str, type(None))


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        msg = "nbflow.optimize and Sweep(search=...) use Optuna: pip install 'nbflow[optuna]'."
        raise MissingDependencyError(msg) from None
    return optuna


class _Trials(Grid):
    """A search's points as a `Grid`: ``n_trials`` long, each point known once its trial is asked."""

    __slots__ = ("_points",)

    def __init__(self, axes: tuple[str, ...], n_trials: int) -> None:
        _freeze(self, _axes=axes, _len=n_trials, _points=[])

    def _row(self, i: int) -> tuple:
        if i >= len(self._points):
            msg = f"Trial {i} of this search has not been asked yet ({len(self._points)} so far)."
            raise IndexError(msg)
        return self._points[i]

    def _rows(self) -> Iterator[tuple]:
        yield from list(self._points)

    def _structure(self) -> str:
        return f"search: {len(self._points)} of {self._len} trials asked"

    @property
    def made(self) -> int:
        """How many points are known: asked, or reloaded from an earlier run."""
        return len(self._points)


class Search:
    """An adaptive search over ``space`` with an Optuna sampler (and pruner); run it with `optimize` or `Sweep`.

    Args:
        space: each parameter with a `uniform`, `loguniform`, `randint` or `choice` (or a list
            of options), as `sample` takes them.
        n_trials: how many points in all; with a cache, those of earlier runs count.
        metric: the output (returned or reported) to minimize or maximize.
        mode: ``"min"`` or ``"max"``.
        sampler: ``"tpe"``, ``"random"``, ``"cmaes"``, ``"qmc"``, ``"grid"`` or an Optuna sampler.
        prune: None, ``"median"``, ``"asha"``, ``"hyperband"`` or an Optuna pruner; points must
            then report ``metric`` with ``nbflow.report(step=..., metric=...)``.
        seed: makes the sampler's choices repeat (exactly, with one point in flight at a time).

    After a run, ``search.study`` is the Optuna study, for Optuna's own plots and analysis.
    """

    def __init__(
        self,
        space: dict,
        *,
        n_trials: int,
        metric: str,
        mode: str = "min",
        sampler: Any = "tpe",
        prune: Any = None,
        seed: int | None = None,
    ) -> None:
        optuna = _optuna()
        self.space = _checked_space(space)
        self.n_trials = _checked_count(n_trials)
        if not isinstance(metric, str) or not metric:
            msg = f"optimize(metric=...) takes the name of an output to optimize, e.g. metric='loss'; got {metric!r}."
            raise SweepError(msg)
        if mode not in ("min", "max"):
            msg = f"optimize(mode=...) is 'min' or 'max'; got {mode!r}."
            raise SweepError(msg)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            msg = f"optimize(seed=...) takes an int; got {type(seed).__name__} {_short(seed)}."
            raise SweepError(msg)
        self.metric, self.mode, self.seed = metric, mode, seed
        self.sampler_spec, self.prune_spec = sampler, prune
        self._choices = {k: _choices(d) for k, d in self.space.items()}
        self.distributions = {k: _to_optuna(optuna, k, d, self._choices[k]) for k, d in self.space.items()}
        self._check_sampler(optuna, sampler)
        self._check_pruner(optuna, prune)
        if sampler == "grid":
            size = math.prod(len(self._choices[k]) for k in self.space)
            if self.n_trials > size:
                warnings.warn(
                    f"optimize(sampler='grid'): the grid has {size} points, so n_trials={self.n_trials} runs {size}.",
                    stacklevel=3,
                )
                self.n_trials = size
        self.study: Any = None
        self.grid = _Trials(tuple(self.space), self.n_trials)
        self._reset()

    def _reset(self) -> None:
        self.grid._points.clear()  # the same grid object: a Sweep holds it
        self._trials: list[Any] = []  # by task index: the Optuna trial (None for one reloaded)
        self._reloaded = 0
        self._in_flight = 0
        self._room = threading.Condition()
        self.problem: SweepError | None = None
        self.storage_path: str | None = None
        self._quieted: Any = None

    # -- checking what was asked for ----------------------------------------------------------

    def _check_sampler(self, optuna: Any, sampler: Any) -> None:
        if isinstance(sampler, optuna.samplers.BaseSampler):
            return
        if sampler not in SAMPLERS:
            msg = f"optimize(sampler={sampler!r}): unknown sampler. Give one of {', '.join(map(repr, SAMPLERS))}, or an Optuna sampler object such as optuna.samplers.TPESampler(seed=0)."
            raise SweepError(msg)
        if sampler == "grid":
            for key, dist in self.space.items():
                if self._choices[key] is None:
                    msg = f"optimize(sampler='grid') lists every value of each parameter, but {key!r} is {dist!r}, a continuous range. Give {key!r} as choice([...]) (or a list of values), or use another sampler."
                    raise SweepError(msg)
        if sampler == "cmaes":
            with_module("cmaes", "sampler='cmaes'")
        if sampler == "qmc":
            with_module("scipy", "sampler='qmc'")

    def _check_pruner(self, optuna: Any, prune: Any) -> None:
        if prune is None or isinstance(prune, optuna.pruners.BasePruner):
            return
        if prune not in PRUNERS:
            msg = f"optimize(prune={prune!r}): unknown pruner. Give one of {', '.join(map(repr, PRUNERS))}, None, or an Optuna pruner object such as optuna.pruners.MedianPruner()."
            raise SweepError(msg)

    @property
    def prunes(self) -> bool:
        return self.prune_spec is not None

    # -- the study ------------------------------------------------------------------------------

    def _sampler(self, optuna: Any, seed: int | None) -> Any:
        spec = self.sampler_spec
        if not isinstance(spec, str):
            return spec
        if spec == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        if spec == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if spec == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if spec == "qmc":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
        # Every value each parameter can take, as Optuna knows it (options by position if need be).
        values = {
            k: list(getattr(self.distributions[k], "choices", None) or self._choices[k]) for k in self.space
        }
        return optuna.samplers.GridSampler(values, seed=seed)

    def _pruner(self, optuna: Any) -> Any:
        spec = self.prune_spec
        if spec is None:
            return optuna.pruners.NopPruner()
        if not isinstance(spec, str):
            return spec
        if spec == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=4)
        if spec == "asha":
            return optuna.pruners.SuccessiveHalvingPruner()
        return optuna.pruners.HyperbandPruner()

    def study_key(self, code: str, salt: str | None) -> str:
        """The study's name: what makes its trials comparable (the target's code, the space, the settings)."""
        parts = [
            code,
            salt or "",
            repr(sorted((k, repr(d)) for k, d in self.space.items())),
            self.metric,
            self.mode,
            repr(_spec_name(self.sampler_spec)),
            repr(_spec_name(self.prune_spec)),
            repr(self.seed),
        ]
        return "nbflow-" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]

    def open(self, code: str, cache: Any) -> None:
        """Create the study, or (with a cache that has one for this target and setting) load it."""
        optuna = _optuna()
        self._reset()
        storage = None
        name = self.study_key(code, cache.salt() if cache is not None else None)
        directory = getattr(cache, "directory", None)
        if directory is not None:
            from optuna.storages.journal import JournalFileBackend

            folder = directory / "studies"
            folder.mkdir(parents=True, exist_ok=True)
            self.storage_path = str(folder / f"{name}.journal")
            storage = optuna.storages.JournalStorage(JournalFileBackend(self.storage_path))
        self._quieted = _quiet()
        self.study = optuna.create_study(
            study_name=name,
            storage=storage,
            pruner=self._pruner(optuna),
            direction="minimize" if self.mode == "min" else "maximize",
            load_if_exists=True,
        )
        earlier = len(self.study.get_trials(deepcopy=False))
        # A resumed study's sampler is seeded from the seed and how far the study got: seeded
        # as at first, it would draw the points it drew then again.
        seed = self.seed if earlier == 0 or self.seed is None else _seed_after(self.seed, earlier)
        self.study.sampler = self._sampler(optuna, seed)
        self._reload(optuna)

    def _reload(self, optuna: Any) -> None:
        """The finished trials of earlier runs, as the first points.

        Failed trials are not reloaded (the sampler still learns from them): like trials left
        running by a run that was stopped, they count for nothing, and new trials take their place.
        """
        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        for trial in self.study.get_trials(deepcopy=False, states=done):
            if len(self._trials) >= self.n_trials:
                break
            self._known(None, trial.params)
        self._reloaded = len(self._trials)

    def close(self) -> None:
        """The run is over: Optuna logs as it did before."""
        if self._quieted is not None:
            self._quieted()
            self._quieted = None

    def _known(self, trial: Any, params: dict) -> dict:
        point = {k: self._decoded(k, params[k]) for k in self.space}
        self._trials.append(trial)
        self.grid._points.append(tuple(point.values()))
        return point

    def _decoded(self, key: str, value: Any) -> Any:
        choices = self._choices[key]
        if choices is None or not isinstance(self.space[key], _Choice) or _all_primitive(choices):
            return value
        return choices[value]  # options that are not plain values are asked by position

    # -- ask and tell ---------------------------------------------------------------------------

    def tasks(self, graph: Any, in_flight: int, cancel: threading.Event) -> Iterator[SubGraphTask]:
        """The points to run: the reloaded ones, then one asked each time fewer than ``in_flight`` run."""
        for i in range(self._reloaded):
            yield SubGraphTask(action=graph, state=State(self.grid[i]))
        while len(self._trials) < self.n_trials and self.problem is None:
            with self._room:
                while self._in_flight >= in_flight and not cancel.is_set():
                    self._room.wait(0.1)
                if cancel.is_set() or self.problem is not None:
                    return
                self._in_flight += 1
            trial = self.study.ask(self.distributions)
            yield SubGraphTask(action=graph, state=State(self._known(trial, trial.params)))

    def tell(self, index: int, status: str, outputs: dict, reports: list | None) -> None:
        """Tell the study how point ``index`` ended (from the step's threads; never raises)."""
        if index < self._reloaded:
            return  # told by the run that made it
        optuna = _optuna()
        states = optuna.trial.TrialState
        trial = self._trials[index]
        try:
            if status in ("error", "timeout"):
                self.study.tell(trial, state=states.FAIL)
            elif status == "pruned":
                self.study.tell(trial, state=states.PRUNED)
            else:
                self._tell_value(trial, outputs, reports, states)
        except RuntimeError as exc:
            if "Study.stop" not in str(exc):
                self._stop(SweepError(f"Optuna could not be told trial {index}'s result: {exc}"))
            # else: the grid sampler saying its grid is done; the trial was told first.
        except Exception as exc:  # an Optuna failure must not stop the step's threads
            self._stop(
                SweepError(f"Optuna could not be told trial {index}'s result: {type(exc).__name__}: {exc}")
            )
        finally:
            with self._room:
                self._in_flight -= 1
                self._room.notify_all()

    def _tell_value(self, trial: Any, outputs: dict, reports: list | None, states: Any) -> None:
        reported = any(self.metric in metrics for _, metrics in reports or ())
        if self.prunes and not reported:
            self.study.tell(trial, state=states.FAIL)
            self._stop(
                SweepError(
                    f"optimize(prune={_spec_name(self.prune_spec)!r}) stops points at their reports of {self.metric!r}, but trial {trial.number} ({_describe(trial.params)}) finished without calling nbflow.report(step=..., {self.metric}=...). Report {self.metric!r} as the point runs (each epoch, say), or leave out prune=."
                )
            )
            return
        if self.metric not in outputs:
            self.study.tell(trial, state=states.FAIL)
            named = ", ".join(map(repr, outputs)) or "nothing"
            self._stop(
                SweepError(
                    f"optimize(metric={self.metric!r}): trial {trial.number} ({_describe(trial.params)}) returned and reported {named}, but no {self.metric!r}. Return a dict with {self.metric!r} (or report it with nbflow.report), or name one of those as metric=."
                )
            )
            return
        value = outputs[self.metric]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            self.study.tell(trial, state=states.FAIL)
            self._stop(
                SweepError(
                    f"optimize(metric={self.metric!r}): trial {trial.number} gave {self.metric}={_short(value)}, a {type(value).__name__}; the metric must be a number to compare."
                )
            )
            return
        if math.isnan(value):
            self.study.tell(trial, state=states.FAIL)  # Optuna's reading of a NaN: the trial failed
            return
        self.study.tell(trial, float(value))

    def _stop(self, problem: SweepError) -> None:
        with self._room:
            if self.problem is None:
                self.problem = problem
            self._room.notify_all()

    def heard(self, index: int, step: int, metrics: dict) -> bool:
        """A report of point ``index``: whether the pruner says to stop it."""
        if not self.prunes or index < self._reloaded or self.metric not in metrics:
            return False
        trial = self._trials[index]
        with warnings.catch_warnings():
            # A retry reports its steps again; Optuna keeps the first and warns.
            warnings.simplefilter("ignore")
            trial.report(float(metrics[self.metric]), step)
            return bool(trial.should_prune())

    def provenance(self) -> dict:
        optuna = _optuna()
        return {
            "sampler": _spec_name(self.sampler_spec),
            "pruner": _spec_name(self.prune_spec),
            "seed": self.seed,
            "space": {k: repr(d) for k, d in self.space.items()},
            "metric": self.metric,
            "mode": self.mode,
            "n_trials": self.n_trials,
            "reloaded": self._reloaded,
            "optuna_version": optuna.__version__,
            "study": self.study.study_name if self.study is not None else None,
            "storage": self.storage_path,
        }

    def __repr__(self) -> str:
        space = ", ".join(f"{k}={d!r}" for k, d in self.space.items())
        return f"Search({space}; {self.n_trials} trials, {self.mode} {self.metric!r}, sampler={_spec_name(self.sampler_spec)!r}, prune={_spec_name(self.prune_spec)!r})"


def optimize(
    target: Any,
    space: dict,
    *,
    n_trials: int,
    metric: str,
    mode: str = "min",
    sampler: Any = "tpe",
    prune: Any = None,
    executor: Any = "threads",
    n_jobs: int | None = None,
    seed: int | None = None,
    cache: Any = None,
    progress: Any = True,
    timeout: float | None = None,
    **options: Any,
) -> Any:
    """Search ``space`` for the point that minimizes (or maximizes) ``metric``, with Optuna: the DataFrame of trials.

    Trials are asked from an Optuna study as workers free up (at most ``n_jobs`` in flight)
    and told as they finish; a failed point is a row and is told as failed, and the search
    goes on. Rows are as `sweep` makes them, plus status ``pruned`` for points the pruner
    stopped; ``df.attrs["nbflow"]["search"]`` records the sampler, pruner, seed and space.

    Args:
        target: a function (called with the parameters as keyword arguments), an action or
            a `RunnableGraph`, as `sweep` takes.
        space: each parameter with `uniform`, `loguniform`, `randint` or `choice`.
        n_trials: how many points in all. With ``cache=``, the study is kept: running again
            with a larger ``n_trials`` runs only the new ones.
        metric, mode: the output to optimize (returned, or reported), ``"min"`` or ``"max"``.
        sampler: ``"tpe"``, ``"random"``, ``"cmaes"``, ``"qmc"``, ``"grid"`` or an Optuna sampler.
        prune: ``"median"``, ``"asha"``, ``"hyperband"`` or an Optuna pruner: a point stops at
            the ``nbflow.report`` where the pruner judges it hopeless.
        executor, n_jobs, cache, progress, timeout, **options: as `sweep` takes them.

    Raises:
        SweepError: a bad space, sampler, pruner or count; or, after the run (with the
            trials that finished in ``.results``), a metric the target never gave.

    Example:
        >>> from nbflow import uniform
        >>> df = optimize(lambda x: (x - 2) ** 2, {"x": uniform(-5, 5)}, n_trials=20,
        ...               metric="result", seed=0, executor="sequential", progress=False)
        >>> round(df["result"].min(), 2) < 0.5
        True
    """
    search = Search(
        space, n_trials=n_trials, metric=metric, mode=mode, sampler=sampler, prune=prune, seed=seed
    )
    return Sweep(
        target,
        search=search,
        executor=executor,
        n_jobs=n_jobs,
        cache=cache,
        progress=progress,
        timeout=timeout,
        **options,
    ).run()


# -- helpers ------------------------------------------------------------------------------------


def _checked_space(space: Any) -> dict:
    if not isinstance(space, dict) or not space:
        msg = f"optimize(space=...) takes a dict of parameters to distributions, e.g. {{'lr': loguniform(1e-4, 1e-1), 'depth': randint(2, 8)}}; got {_short(space)}."
        raise SweepError(msg)
    checked = {}
    for key, spec in space.items():
        if not isinstance(key, str) or not key.isidentifier():
            msg = f"optimize(space=...): parameter {key!r} is not a valid Python name; the target receives the parameters as keyword arguments."
            raise SweepError(msg)
        if isinstance(spec, (list, tuple)):
            from nbflow.sweeps.distributions import choice

            spec = choice(spec)
        if not isinstance(spec, Distribution):
            msg = f"optimize(space=...): {key!r} is {type(spec).__name__} {_short(spec)}, not a distribution. Give uniform(low, high), loguniform(low, high), randint(low, high), choice(options) or a list of options."
            raise SweepError(msg)
        checked[key] = spec
    return checked


def _checked_count(n_trials: Any) -> int:
    try:
        count = operator.index(n_trials)
    except TypeError:
        msg = f"optimize(n_trials=...) takes a positive int, how many points to try; got {type(n_trials).__name__} {_short(n_trials)}."
        raise SweepError(msg) from None
    if count < 1:
        msg = f"optimize(n_trials=...) needs at least 1 trial; got {count}."
        raise SweepError(msg)
    return count


def _choices(dist: Distribution) -> tuple | None:
    """Every value ``dist`` can give, when they are few enough to list; None for a continuous range."""
    if isinstance(dist, _Choice):
        return dist.options
    if isinstance(dist, _RandInt) and dist.high - dist.low < _GRID_MOST:
        return tuple(range(dist.low, dist.high + 1))
    return None


def _all_primitive(options: tuple) -> bool:
    return all(isinstance(o, _PRIMITIVE) for o in options)


def _to_optuna(optuna: Any, key: str, dist: Distribution, choices: tuple | None) -> Any:
    d = optuna.distributions
    if isinstance(dist, _Uniform):
        return d.FloatDistribution(dist.low, dist.high)
    if isinstance(dist, _LogUniform):
        return d.FloatDistribution(dist.low, dist.high, log=True)
    if isinstance(dist, _RandInt):
        return d.IntDistribution(dist.low, dist.high)
    if isinstance(dist, _Choice):
        options = dist.options
        # Optuna stores plain values only; other options (tuples, objects) go by position.
        return d.CategoricalDistribution(options if _all_primitive(options) else tuple(range(len(options))))
    msg = f"optimize(space=...): {key!r} is {dist!r}, which Optuna cannot search."
    raise SweepError(msg)


def _seed_after(seed: int, trials: int) -> int:
    digest = hashlib.sha256(f"nbflow.search:{seed}:{trials}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _spec_name(spec: Any) -> str | None:
    return spec if spec is None or isinstance(spec, str) else type(spec).__name__


def _describe(params: dict) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in list(params.items())[:4])


def with_module(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        msg = f"optimize({what}) needs the {module!r} package: pip install 'nbflow[optuna]' (or pip install {module})."
        raise MissingDependencyError(msg)


def _quiet() -> Any:
    """Raise Optuna's log level to WARNING; returns what puts it back.

    Optuna logs every trial it is told of at INFO; a sweep shows its own rows instead.
    """
    logger = logging.getLogger("optuna")
    level = logger.level
    if level and level >= logging.WARNING:
        return lambda: None
    logger.setLevel(logging.WARNING)
    return lambda: logger.setLevel(level)
