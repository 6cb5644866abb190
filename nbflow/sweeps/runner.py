"""`Sweep`: run a target over every point of a grid, in parallel, into a live DataFrame.

A sweep is a parallel action (one task per point), so it runs on any executor,
resumes and caches like any map, and can sit inside an application's graph.
Standalone, ``Sweep(...).run()`` builds that one-step application for you.

The target is one of:

- a plain function, called with the point's parameters as keyword arguments;
  a dict it returns becomes columns, anything else a ``result`` column;
- an action or a `RunnableGraph`, run with the parameters in its state; the
  keys it writes become columns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import inspect
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from nbflow.core.actions import Action, ApplicationContext
from nbflow.core.builder import ApplicationBuilder
from nbflow.core.extensions import use as extension
from nbflow.core.state import State
from nbflow.errors import Interrupted, SweepError, TasksCancelled, TaskTimeoutError, summarize_exception
from nbflow.parallel.capture import OUTPUT
from nbflow.parallel.executors import SequentialExecutor, concurrency
from nbflow.parallel.map import TaskBasedParallelAction, task_failed
from nbflow.parallel.registry import resolve_executor
from nbflow.parallel.reporting import PRUNED, REPORTS, last_values
from nbflow.parallel.tasks import RunnableGraph, SubGraphTask, TaskState, as_runnable
from nbflow.persistence.curves import TaskCurves
from nbflow.persistence.logs import TaskLogs
from nbflow.settings import current as current_settings
from nbflow.settings import run_store_path
from nbflow.sweeps.curves import curves_frame
from nbflow.sweeps.grids import Grid, axis_key, grid, zipped
from nbflow.sweeps.progress import make_progress
from nbflow.sweeps.provenance import collect_provenance, git_in_background, new_run_id
from nbflow.sweeps.results import RUN_FIELDS, ResultTable, column_names, run_column, table_rows

__all__ = ["Sweep", "sweep"]

_RESULT = "_nbflow_result"
_NOT_PRUNED = object()


class _CallTarget(Action):
    """A plain function as an action: parameters in from state, its return value out."""

    def __init__(self, fn: Callable, params: list[str]) -> None:
        self.fn = fn
        self.reads = list(params)
        self.writes = [_RESULT]
        inner = fn
        # A partial of cross_validate is still cross_validate, in names and in run history.
        while isinstance(inner, functools.partial):
            inner = inner.func
        self._name = getattr(inner, "__name__", "target")

    def run(self, state: State) -> dict:
        return {_RESULT: self.fn(**{k: state[k] for k in self.reads})}

    def run_direct(self, state: State) -> State:
        """`run` and its update in one: a sweep's task state always holds every parameter."""
        return state._with({_RESULT: self.fn(**{k: state[k] for k in self.reads})})


class _AsyncCallTarget(_CallTarget):
    """An ``async def`` function as an action: awaited, so its rows hold results, not coroutines."""

    run_direct = None  # awaited through the step machinery

    @property
    def is_async(self) -> bool:
        return True

    async def run(self, state: State) -> dict:
        return {_RESULT: await self.fn(**{k: state[k] for k in self.reads})}


def _target_graph(target: Any, axes: list[str]) -> RunnableGraph:
    if isinstance(target, (Action, RunnableGraph)):
        return as_runnable(target, "Sweep(target=...)")
    if callable(target):
        _check_signature(target, axes)
        kind = _AsyncCallTarget if _is_coroutine_function(target) else _CallTarget
        return as_runnable(kind(target, axes), "Sweep(target=...)")
    msg = f"Sweep(target=...) takes a function, an action or a RunnableGraph; got {type(target).__name__}."
    raise TypeError(msg)


def _is_coroutine_function(fn: Callable) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    # An object whose __call__ is `async def` is awaited too.
    call = None if inspect.isfunction(fn) else type(fn).__dict__.get("__call__")
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


def _check_signature(fn: Callable, axes: list[str]) -> None:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = [a for a in axes if a not in params]
    if unknown:
        name = getattr(fn, "__name__", repr(fn))
        msg = f"Sweep axis {unknown[0]!r} is not a parameter of {name}(); its parameters are {list(params)}. Rename the axis, or add a parameter {unknown[0]}=... (or **params) to {name}."
        raise SweepError(msg)
    missing = [
        n
        for n, p in params.items()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in axes
    ]
    if missing:
        name = getattr(fn, "__name__", repr(fn))
        msg = f"{name}() needs parameter {missing[0]!r}, which no sweep axis gives. Add an axis {missing[0]}=[...], or give the parameter a default."
        raise SweepError(msg)


@dataclasses.dataclass
class _SweepRun:
    """What one run of a sweep holds while it runs and after: its rows, logs, clock and executor."""

    table: ResultTable
    finished: _Finished
    logs: TaskLogs
    curves: TaskCurves
    started: dt.datetime
    ended: dt.datetime | None = None
    running: bool = True
    executor: str | None = None
    executor_config: str | None = None
    code_hash: Callable[[], str] | None = None
    # How it stopped early, if it did: "interrupted" (Ctrl-C) or "cancelled" (cancel()).
    stopped: str | None = None
    never_ran: int = 0
    control: Any = None  # the map's StepRun: whether it was cancelled or interrupted
    final: Any = None
    provenance: dict | None = None
    git: Callable[[], dict | None] | None = None
    # What points still running reported so far, heard as they report (see Sweep._heard_report).
    running_curves: dict = dataclasses.field(default_factory=dict)
    # Held while a point's row and curve are added, and while the curves are read (by
    # Sweep.curves() and the live view, from other threads).
    lock: Any = dataclasses.field(default_factory=threading.Lock)
    # The live view, told when there is something new to draw.
    view: Any = None
    # Its id in the run store, if it is recorded (see Sweep(record=...)), and the store's folder.
    run_id: str | None = None
    store: Any = None


class _Latest:
    """The object a Sweep and the copies a graph makes of it share: the latest run, and a rerun's merge."""

    def __init__(self) -> None:
        self.run: _SweepRun | None = None
        self.rerun: Any = None


class Sweep(TaskBasedParallelAction):
    """Runs ``target`` over every point of ``grid``; the results become a DataFrame.

    Args:
        target: a function (called with the parameters as keyword arguments), an
            action or a `RunnableGraph` (the parameters go into its state).
        grid: a `Grid` (from `grid`, `zipped`, `sample` and their compositions), or
            a dict of axes, taken as ``grid(**axes)``.
        search: instead of a grid, a `nbflow.sweeps.search.Search`: points asked from an
            Optuna study as others finish (see `nbflow.optimize`).
        executor: where the points run: a name (``"threads"``, ``"processes"``,
            ``"async"``, ``"dask"``, ``"ray"``, ``"sequential"``) or an executor.
        on_error: ``"record"`` (a failed point becomes an ``error`` row and the
            sweep goes on) or ``"raise"``.
        retries: how often to retry a failing point first (a timed-out one too).
        timeout: the most seconds a point may run; one that runs longer becomes a
            ``timeout`` row and the sweep goes on. On processes, Ray and sequential it
            is stopped; on threads, async and Dask (whose workers run points on
            threads) it is abandoned and may run on in the background: Python cannot
            stop a thread.
        cache: skip points computed before (True, a directory, a persister, or a `ResultCache`).
        progress: True for a tqdm.auto bar, False for none, or a tqdm-like class.
        live: in Jupyter, redraw the table of results so far while it runs.
        name: the sweep's name (in the progress bar, and its key in a graph).
        output: the state key a sweep inside an application writes its DataFrame to.
        n_jobs: how many points run at once on the executor named by ``executor``
            (its ``max_concurrency``; on Dask and Ray, batches in flight).
        capture: keep what each point prints (stdout, stderr, warnings) in its log,
            ``df.nbflow.log(task_id)``, instead of the cell; False lets it through.
        record: keep the finished frame in the run store (`nbflow.runs`, `nbflow.load_run`),
            interrupted and cancelled runs too; None follows ``nbflow.config(record=...)``
            (True unless set). The frame's ``attrs["nbflow"]["run_id"]`` names its run.
        store: the run store's folder; None follows ``nbflow.config(store=...)``, else
            ``$NBFLOW_HOME/runs``, else ``.nbflow/runs`` in the current directory.

    Example:
        >>> def loss(lr, depth):
        ...     return {"loss": (lr - 0.1) ** 2 + depth / 100}
        >>> df = Sweep(loss, grid(lr=[0.01, 0.1], depth=[1, 2]), progress=False).run()
        >>> df[["lr", "depth", "loss", "status"]].values.tolist()[1]
        [0.01, 2, 0.0281, 'ok']
    """

    # Failed points reach reduce whatever on_error says: each one is a row first.
    _reduce_sees_failures = True
    # The table keeps every row: the map need not keep the sub-states too.
    _keep_finished = False
    # The grid is known before anything runs.
    _tasks_ahead = True
    # Reports feed `curves()` and the live view while points run.
    _hears_reports = True

    def __init__(
        self,
        target: Any,
        grid: Grid | dict | None = None,
        *,
        search: Any = None,
        executor: Any = "threads",
        on_error: str = "record",
        retries: int = 0,
        retry_backoff_s: float = 0.1,
        timeout: float | None = None,
        cache: Any = None,
        progress: Any = True,
        live: bool = True,
        name: str | None = None,
        output: str = "results",
        n_jobs: int | None = None,
        capture: bool = True,
        record: bool | None = None,
        store: Any = None,
    ) -> None:
        if record is not None and not isinstance(record, bool):
            msg = f"Sweep(record=...) takes True, False, or None to follow nbflow.config(record=...); got {record!r}."
            raise TypeError(msg)
        if store is not None and not isinstance(store, (str, os.PathLike)):
            msg = (
                f"Sweep(store=...) takes the run store's folder, a str or a path; got {type(store).__name__}."
            )
            raise TypeError(msg)
        if n_jobs is not None:
            executor = _with_n_jobs(executor, n_jobs)
        super().__init__(
            on_error=on_error,
            retries=retries,
            retry_backoff_s=retry_backoff_s,
            timeout=timeout,
            executor=executor,
            cache=cache,
        )
        self.search = search
        if search is not None:
            if grid is not None:
                msg = "Sweep(target, grid, search=...): give a grid or a search, not both. A search asks for its points itself."
                raise SweepError(msg)
            self.grid = search.grid
            # Each point is asked once one finishes, and the search may stop points it judges hopeless.
            self._waits_on_results = True
            self._tasks_ahead = False
            self._stops_tasks = search.prunes
        elif grid is None:
            msg = "Sweep(target) needs the points to run: a grid (nbflow.grid(...), sample(...), a dict of axes) or search=nbflow.Search(...)."
            raise SweepError(msg)
        else:
            self.grid = grid if isinstance(grid, Grid) else _as_grid(grid)
        self.target = target
        self.graph = _target_graph(target, self.grid.axes)
        self._name = name or getattr(target, "name", None) or getattr(target, "__name__", None) or "sweep"
        self.progress = progress
        self.live = live
        self.capture_output = bool(capture)
        self.record = record
        self.store = store
        self.reads = []
        self.writes = [output]
        self.output = output
        # Shared by the copies a graph makes, so `.results` on the object you hold stays live.
        self._latest = _Latest()

    # -- the public face ----------------------------------------------------------------------

    def run(self) -> Any:  # type: ignore[override]
        """Run every point and return the DataFrame; after ``cancel()``, the partial one.

        Raises:
            Interrupted: Ctrl-C or the notebook's Stop (a ``KeyboardInterrupt``); its
                ``.results``, like ``sweep.results``, is the partial frame: the finished
                rows as they are and the rest ``cancelled``.
            TaskFailed: a point failed with ``on_error="raise"``; ``sweep.results``
                still holds the finished rows and the failed one.
        """
        app = ApplicationBuilder().with_actions(**{self.name: self}).with_entrypoint(self.name).build()
        try:
            frame = app.run()[2][self.output]
            problem = self.search.problem if self.search is not None else None
            if problem is not None:
                # The search stopped asking; what ran is kept with the error.
                problem.results = frame
                raise problem
            return frame
        except TasksCancelled:
            return self.results
        except Interrupted as exc:
            frame = self.results
            run = self._latest.run
            unfinished = run.never_ran if run else len(frame)
            counts = _summary_counts(run.table) if run else ""
            done = f"{len(frame) - unfinished} of {len(frame)} points" + (f" ({counts})" if counts else "")
            again = (
                "run it again to compute only the rest: the cache has the finished points"
                if self.cache is not None
                else "pass cache=True next time to keep finished points across runs"
            )
            msg = f"Sweep {self.name!r} was interrupted after {done}; {unfinished} of {len(frame)} points never finished. The partial results are in exc.results and sweep.results; {again}."
            raise Interrupted(
                msg, partial_state=exc.partial_state, finished=exc.finished, results=frame
            ) from None

    @property
    def results(self) -> Any:
        """The DataFrame so far: the finished points while it runs; after a cancel, the rest as ``cancelled``."""
        latest = self._latest
        run = latest.run
        if run is None:
            return ResultTable(self.grid.axes).frame()
        if latest.rerun is not None and not run.running:
            return latest.rerun
        return self._frame(run)

    def curves(self) -> Any:
        """Every report heard so far, as ``df.nbflow.curves()`` has them: of finished points and running ones.

        While the sweep runs, a running point's reports are here as it makes them (from worker
        processes, Dask and Ray within a fraction of a second), before its row exists. Once it
        has stopped they are the results' own (after ``rerun_failed()``, the merged ones').
        """
        latest = self._latest
        if latest.run is None:
            return curves_frame([], {}, list(self.grid.axes), "task_id", {})
        if latest.rerun is not None and not latest.run.running:
            return latest.rerun.nbflow.curves()
        return self._curves_of(latest.run)

    def _curves_of(self, run: _SweepRun) -> Any:
        with run.lock:
            # Copies: a running point's curve grows while the frame is built. Only points still
            # running, and only while the run is: see _heard_report.
            running = (
                {i: list(c) for i, (_, c) in list(run.running_curves.items()) if i not in run.finished}
                if run.running
                else {}
            )
            reported = {**running, **run.curves}
            outputs = list(run.table.outputs)
        names = column_names(self.grid.axes, outputs)
        points = [{**self.grid[i], names["task_id"]: i} for i in reported]
        return curves_frame(points, reported, list(self.grid.axes), names["task_id"], names["outputs"])

    def rerun_failed(self) -> Any:
        """Run again only the points whose last result was ``error``, ``timeout`` or ``cancelled``.

        Returns:
            The whole DataFrame, with those rows replaced by the new results
            (``sweep.results`` shows it too).
        """
        before = self.results
        status, task_id = run_column(before, "status"), run_column(before, "task_id")
        redo = [int(i) for i in before.loc[before[status].isin(["error", "timeout", "cancelled"]), task_id]]
        if not redo:
            return before
        subset = zipped(**{axis: [self.grid[i][axis] for i in redo] for axis in self.grid.axes})
        again = Sweep(
            self.target,
            subset,
            executor=self.executor,
            on_error=self.on_error,
            retries=self.retries,
            retry_backoff_s=self.retry_backoff_s,
            timeout=self.timeout,
            cache=self.cache,
            progress=self.progress,
            live=self.live,
            name=self.name,
            capture=self.capture_output,
            # The merged frame below is the run worth recording, not the failed points alone.
            record=False,
        ).run()
        # Rebuilt row by row through a table, not concatenated: the new rows may bring outputs the
        # old ones lacked (or lack theirs), and the column names and dtypes must follow the rules
        # for the whole frame.
        fresh = {redo[row["task_id"]]: row for row in table_rows(again, self.grid.axes)}
        table = ResultTable(self.grid.axes)
        logs, curves = TaskLogs(), TaskCurves()
        old_logs = before.attrs.get("nbflow", {}).get("logs") or TaskLogs()
        new_logs = again.attrs.get("nbflow", {}).get("logs") or TaskLogs()
        old_curves = before.attrs.get("nbflow", {}).get("curves") or TaskCurves()
        new_curves = again.attrs.get("nbflow", {}).get("curves") or TaskCurves()
        for row in table_rows(before, self.grid.axes):
            index = row["task_id"]
            if index in fresh:
                position = fresh[index]["task_id"]  # its task id in the rerun
                logs.add(index, new_logs.text(position))
                reported = new_curves.get(position)
                row = {**fresh[index], "task_id": index}
            else:
                logs.add(index, old_logs.text(index))
                reported = old_curves.get(index)
            if reported:
                curves.set(index, reported)
            table.add(row["params"], row["outputs"], **{f: row[f] for f in RUN_FIELDS})
        merged = table.frame()
        merged.attrs["nbflow"] = {
            **before.attrs.get("nbflow", {}),
            "columns": merged.attrs["nbflow"]["columns"],
            "logs": logs,
            "curves": curves,
            "reran": len(redo),
        }
        merged.attrs["nbflow"].pop("run_id", None)
        recording = self._recording()
        if recording:
            # A run of its own, that says which run it mended.
            merged.attrs["nbflow"].update(
                run_id=recording["run_id"], reran_from=before.attrs["nbflow"].get("run_id")
            )
            self._record_frame(merged, recording["store"], "complete")
        self._latest.rerun = merged
        return merged

    def __len__(self) -> int:
        return len(self.grid)

    def children(self) -> list[RunnableGraph]:
        return [self.graph]

    def __repr__(self) -> str:
        return f"<Sweep {self.name!r}: {len(self.grid)} points of {self.graph.name!r}>"

    # -- the parallel action ------------------------------------------------------------------

    def tasks(self, state: State, context: ApplicationContext, inputs: dict) -> Iterator[SubGraphTask]:
        if self.search is not None:
            control = self._latest.run.control
            yield from self.search.tasks(self.graph, concurrency(control.executor), control.cancel)
            return
        for point in self.grid:
            yield SubGraphTask(action=self.graph, state=State(point))

    def _settled(self, run: Any, sub: TaskState) -> None:
        status, outputs = self._result_of(sub)
        self.search.tell(sub.task.index, status, outputs, sub.get(REPORTS))

    def _live_curves(self, run: _SweepRun) -> tuple[Any, list, str]:
        curves = self._curves_of(run)
        return curves, list(self.grid.axes), curves.columns[len(self.grid.axes)]

    def _heard_report(self, step_run: Any, report: tuple) -> bool | None:
        index, step, metrics, attempt = report
        run = self._latest.run
        if run is None or run.control is not step_run:
            return  # from a run that is over (a thread abandoned past its timeout)
        # No lock: the points' threads would queue on it with the thread adding rows. A report
        # that races a point's row (or the end of the run) lands in a curve `_curves_of` leaves
        # out, since a finished point's curve is its result's, and a stopped run's are the rows'.
        if not run.running or index in run.finished:
            return
        held = run.running_curves.get(index)
        if held is None or attempt > held[0]:
            held = run.running_curves[index] = (attempt, [])
        elif attempt < held[0]:
            return  # an earlier attempt, abandoned past its timeout, still reporting
        held[1].append((step, metrics))
        if run.view is not None:
            run.view.refresh()
        if self.search is not None:
            try:
                return self.search.heard(index, step, metrics)
            except Exception:
                return False  # the trial was told meanwhile (its result raced this report)
        return None

    def _started(self, run: Any) -> None:
        if self.search is not None:
            # Before the run's table: reloading an earlier run's trials makes the first points.
            self.search.open(run.code_key(self.graph), run.cache)
        # The executor that really runs the points, and the code hash the cache keys use.
        self._latest.run = _SweepRun(
            table=ResultTable(self.grid.axes),
            finished=_Finished(len(self.grid)),
            logs=TaskLogs(),
            curves=TaskCurves(),
            started=dt.datetime.now(dt.timezone.utc),
            executor=run.executor.name,
            executor_config=repr(run.executor),
            code_hash=functools.partial(run.code_key, self.graph),
            control=run,
            git=git_in_background(),
            **self._recording(),
        )
        self._latest.rerun = None

    def _recording(self) -> dict[str, Any]:
        """The run's id and store if this run is recorded, decided (with the folder) as it starts."""
        if not (self.record if self.record is not None else current_settings()["record"]):
            return {}
        # Resolved now: a notebook that changes directory mid-run still records where it started.
        return {"run_id": new_run_id(), "store": run_store_path(self.store).absolute()}

    def reduce(self, state: State, states: Iterator[TaskState]) -> State:
        run = self._latest.run
        table = run.table
        bar = make_progress(self.progress, len(self.grid), self.name)
        # In a notebook, the notebook layer's live table; elsewhere None.
        live = run.view = (
            extension("live_table")(
                run.table.frame,
                total=len(self.grid),
                curves=functools.partial(self._live_curves, run),
                **({"best": (self.search.metric, self.search.mode)} if self.search is not None else {}),
            )
            if self.live
            else None
        )
        failed: TaskState | None = None
        ended = "failed"  # until the loop says otherwise: an exception out of it is a failed run
        try:
            for sub in states:
                self._add(run, sub)
                # tqdm's update() says when it redrew; formatting the counts only then keeps
                # the bar's cost per point to a counter increment.
                if bar is not None and bar.update(1):
                    bar.set_postfix(_counts(table), refresh=False)
                if live is not None:
                    live.refresh()
                if sub.task.error is not None and self.on_error == "raise":
                    failed = sub
                    break
            else:
                ended = "complete"
        except KeyboardInterrupt:
            run.stopped = "interrupted"
            raise
        finally:
            try:
                if bar is not None:
                    bar.set_postfix(_counts(table), refresh=False)
                    bar.close()
                control = run.control
                if (
                    run.stopped is None
                    and control is not None
                    and (control.interrupted or control.cancel_requested)
                ):
                    run.stopped = "interrupted" if control.interrupted else "cancelled"
                self._close(run)
                if run.run_id is not None:
                    self._record(run, run.stopped or ended)
            finally:
                if self.search is not None:
                    self.search.close()
                # Whatever failed above, the live view's thread must end.
                if live is not None:
                    live.close(self._summary(run))
        partial = state.update(**{self.output: self._frame(run)})
        if failed is not None:
            task = failed.task
            raise task_failed(
                self.name,
                task.index,
                _describe(self.grid[task.index]),
                task.error,
                task.traceback,
                table.counts["ok"] + table.counts["cached"],
                partial,
            )
        return partial

    def _record(self, run: _SweepRun, status: str) -> None:
        if self._record_frame(self._frame(run), run.store, status) is None:
            run.run_id = None

    def _record_frame(self, frame: Any, store: Any, status: str) -> str | None:
        """Keep ``frame`` in the run store; a failure to is a warning, never lost results."""
        # Here, not at the top: pandas and pyarrow load with the first frame, not with `import nbflow`.
        from nbflow.sweeps.runs import record_frame

        kind = "optimize" if self.search is not None else "sweep"
        return record_frame(frame, store, name=self.name, kind=kind, status=status)

    def _summary(self, run: _SweepRun) -> str:
        """The line a live view ends with: ``train: 44 ok, 2 error``, saying so when it stopped early."""
        counts = _summary_counts(run.table) or "no points"
        if run.stopped is None:
            return f"{self.name}: {counts}"
        return (
            f"{self.name}: {run.stopped}: {counts}; {run.never_ran} of {len(self.grid)} points never finished"
        )

    def _result_of(self, sub: TaskState) -> tuple[str, dict]:
        """A finished point's status, and its outputs: what it returned, and the last of what it reported."""
        task = sub.task
        if isinstance(task.error, TaskTimeoutError):
            return "timeout", {}
        if task.error is not None:
            return "error", {}
        if sub.get(PRUNED, _NOT_PRUNED) is not _NOT_PRUNED:
            # Its columns stay empty: a metric of the epochs it ran would pass for a finished
            # point's in a sort or a max. What it reported is in its curve.
            return "pruned", {}
        reports = sub.get(REPORTS)
        reported = last_values(reports) if reports else {}
        # What the point returned wins over what it reported under the same name.
        return ("cached" if task.cached else "ok"), {**reported, **self._outputs(sub)}

    def _add(self, run: _SweepRun, sub: TaskState) -> None:
        task = sub.task
        point = self.grid[task.index]
        printed = sub.get(OUTPUT)
        if printed:
            run.logs.add(task.index, printed)
        status, outputs = self._result_of(sub)
        if status == "timeout":
            run.logs.add(task.index, summarize_exception(task.error))
        elif status == "error":
            run.logs.add(task.index, task.traceback or summarize_exception(task.error))
        reports = sub.get(REPORTS)
        with run.lock:
            run.finished.add(task.index)
            run.running_curves.pop(task.index, None)
            if reports:
                run.curves.set(task.index, reports)
        run.table.add(
            point,
            outputs,
            status=status,
            error=summarize_exception(task.error) if task.error is not None else None,
            attempts=task.attempts,
            duration_s=task.duration_s,
            task_id=task.index,
        )

    def _close(self, run: _SweepRun) -> None:
        """The run has stopped: points that never finished become ``cancelled`` rows."""
        # A search's points that were never asked are no points at all.
        made = self.grid.made if self.search is not None else len(self.grid)
        for index in range(made):
            if index not in run.finished:
                run.table.add(self.grid[index], {}, status="cancelled", task_id=index)
                run.never_ran += 1
        run.ended = dt.datetime.now(dt.timezone.utc)
        with run.lock:
            # Points still running after a stop (threads cannot be stopped) report into nothing:
            # the curves are the rows' own from now on.
            run.running = False
            run.running_curves.clear()

    def _outputs(self, sub: State) -> dict:
        if _RESULT in self.graph.writes:
            value = sub.get(_RESULT)
            return dict(value) if isinstance(value, dict) else {"result": value}
        return {k: sub[k] for k in self.graph.writes if k in sub}

    def _frame(self, run: _SweepRun) -> Any:
        """The table as a DataFrame; once the run has stopped, with its provenance (built once)."""
        if run.final is not None:
            return run.final
        running = run.running
        frame = run.table.frame()
        if running:
            return frame
        if run.provenance is None:
            run.provenance = self._provenance(run)
        frame.attrs["nbflow"] = {
            **run.provenance,
            **frame.attrs["nbflow"],
            "logs": run.logs,
            "curves": run.curves,
        }
        run.final = frame
        return frame

    def _provenance(self, run: _SweepRun) -> dict:
        made = collect_provenance(
            axes=_axes_provenance(self.grid),
            target_name=self.graph.name,
            code_hash=run.code_hash(),
            executor=run.executor,
            executor_config=run.executor_config,
            started_at=run.started,
            ended_at=run.ended or dt.datetime.now(dt.timezone.utc),
            git=run.git,
        )
        if self.search is not None:
            made["search"] = self.search.provenance()
        if run.run_id is not None:
            made["run_id"] = run.run_id
        return made


def _with_n_jobs(executor: Any, n_jobs: Any) -> Any:
    """The executor named ``executor``, made to run ``n_jobs`` points at once."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        msg = f"Sweep(n_jobs=...) takes a positive int, how many points run at once; got {n_jobs!r}."
        raise ValueError(msg)
    if executor is None:
        # None means the application's executor, which is not known here: threads would be a guess.
        msg = f"Sweep(executor=None, n_jobs={n_jobs}): n_jobs applies to the executor named here. Name it (executor='threads', 'processes', ...), or give the application an executor made with max_concurrency={n_jobs}."
        raise ValueError(msg)
    if executor == "sequential" or isinstance(executor, SequentialExecutor):
        if n_jobs == 1:
            return executor
        msg = f"Sweep(executor='sequential', n_jobs={n_jobs}): the sequential executor runs one point at a time, in your own thread. Choose executor='threads' (or 'processes') to run {n_jobs} at once."
        raise ValueError(msg)
    try:
        return resolve_executor(executor, max_concurrency=n_jobs)
    except TypeError as exc:
        msg = f"Sweep(executor={executor!r}, n_jobs={n_jobs}): {exc}"
        raise ValueError(msg) from None


def _describe(point: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in list(point.items())[:4])[:200]


def _counts(table: ResultTable) -> dict[str, int]:
    counts = {"ok": table.counts["ok"], "error": table.counts["error"], "cached": table.counts["cached"]}
    for rarer in ("timeout", "pruned"):
        if table.counts[rarer]:
            counts[rarer] = table.counts[rarer]
    return counts


def _summary_counts(table: ResultTable) -> str:
    return ", ".join(f"{n} {k}" for k, n in table.counts.items() if n and k != "cancelled")


class _Finished:
    """Which points have a row, one byte per point (a set of 100,000 ints would take megabytes)."""

    def __init__(self, size: int) -> None:
        self._flags = bytearray(size)
        self._count = 0

    def add(self, index: int) -> None:
        if not self._flags[index]:
            self._flags[index] = 1
            self._count += 1

    def __contains__(self, index: int) -> bool:
        return bool(self._flags[index])

    def __len__(self) -> int:
        return self._count


_AXIS_VALUES_KEPT = 1000


def _axes_provenance(g: Grid) -> dict[str, Any]:
    """Each axis's distinct values, in order; past a thousand, a summary instead of the list."""
    seen: dict[str, dict] = {axis: {} for axis in g.axes}
    first: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for point in g:
        for axis, values in seen.items():
            value = axis_key(point[axis])
            first.setdefault(axis, value)
            last[axis] = value
            if len(values) <= _AXIS_VALUES_KEPT:
                values.setdefault(value, None)
    return {
        axis: list(values)
        if len(values) <= _AXIS_VALUES_KEPT
        else {"distinct": f"more than {_AXIS_VALUES_KEPT}", "first": first[axis], "last": last[axis]}
        for axis, values in seen.items()
    }


def _as_grid(axes: Any) -> Grid:
    if isinstance(axes, dict):
        return grid(**axes)
    msg = f"Sweep(grid=...) takes a Grid (nbflow.grid(...), zipped(...), sample(...)) or a dict of axes; got {type(axes).__name__}."
    raise TypeError(msg)


def sweep(target: Any, grid: Grid | dict, **options: Any) -> Any:
    """``Sweep(target, grid, **options).run()``: the DataFrame of results.

    Example:
        >>> sweep(lambda x: x * x, {"x": [1, 2, 3]}, progress=False)["result"].tolist()
        [1, 4, 9]
    """
    return Sweep(target, grid, **options).run()
