"""nbflow: a Jupyter-centric experimentation toolkit.

Importing nbflow is cheap: it pulls in no IPython, ipywidgets, graphviz or
pandas. Those load where they are used.
"""

from nbflow._version import __version__ as __version__
from nbflow.core import (
    Action,
    Application,
    ApplicationBuilder,
    ApplicationContext,
    Condition,
    FunctionAction,
    Graph,
    GraphBuilder,
    Input,
    LifecycleHook,
    PostApplicationCreateHook,
    PostApplicationExecuteCallHook,
    PostRunStepHook,
    PostRunStepHookAsync,
    PreApplicationExecuteCallHook,
    PreRunStepHook,
    PreRunStepHookAsync,
    Result,
    State,
    StateList,
    Transition,
    action,
    default,
    expr,
    extensions,
    when,
)
from nbflow.errors import (
    ActionContractError,
    ActionReturnTypeError,
    AsyncActionError,
    CacheKeyError,
    ConditionError,
    GraphError,
    HaltError,
    HookContractError,
    HookError,
    Interrupted,
    MissingDependencyError,
    MissingInputError,
    NbflowError,
    NotRecordedError,
    PersistenceError,
    PersisterConflictError,
    Pruned,
    RemoteTaskError,
    RunNotFoundError,
    RunStoreError,
    SerializationError,
    StaleCodeError,
    StateKeyError,
    StateValueError,
    SweepError,
    TaskFailed,
    TaskPicklingError,
    TasksCancelled,
    TaskTimeoutError,
    UnknownExecutorError,
)
from nbflow.parallel import (
    AsyncExecutor,
    DaskExecutor,
    Executor,
    MapActions,
    MapActionsAndStates,
    MapStates,
    MultiProcessExecutor,
    MultiThreadedExecutor,
    RayExecutor,
    RunConcurrent,
    RunnableGraph,
    SequentialExecutor,
    StepEvent,
    SubGraphTask,
    TaskBasedParallelAction,
    TaskInfo,
    TaskState,
    ainterleave,
    concat,
    interleave,
    last,
    map_reduce_action,
    register_executor,
    sum_changes,
)
from nbflow.parallel.recording import record
from nbflow.parallel.reporting import report
from nbflow.persistence import (
    InMemoryPersister,
    LocalTracker,
    ResultCache,
    SQLitePersister,
    history,
    register_serde,
    state_at,
)
from nbflow.settings import config
from nbflow.sweeps import (
    Grid,
    ResultTable,
    Search,
    Sweep,
    choice,
    grid,
    loguniform,
    optimize,
    randint,
    sample,
    sweep,
    sweep_notebook,
    to_dataframe,
    uniform,
    zipped,
)

__all__ = [
    # state
    "State", "StateList",
    # actions
    "Action", "FunctionAction", "action", "ApplicationContext",
    # graphs and transitions
    "Graph", "GraphBuilder", "Transition", "Condition", "when", "expr", "default",
    # applications, and the hooks and actions Burr users know
    "Application", "ApplicationBuilder", "LifecycleHook", "Input", "Result",
    "PreRunStepHook", "PostRunStepHook", "PreRunStepHookAsync", "PostRunStepHookAsync",
    "PostApplicationCreateHook", "PreApplicationExecuteCallHook", "PostApplicationExecuteCallHook",
    # parallel actions and sub-graphs
    "TaskBasedParallelAction", "MapActionsAndStates", "MapStates", "MapActions",
    "SubGraphTask", "RunnableGraph", "TaskInfo", "TaskState", "map_reduce_action",
    "RunConcurrent", "sum_changes", "concat", "last",
    "StepEvent", "interleave", "ainterleave",
    # executors
    "Executor", "SequentialExecutor", "MultiThreadedExecutor", "MultiProcessExecutor",
    "AsyncExecutor", "DaskExecutor", "RayExecutor", "register_executor",
    # persistence, caching and tracking
    "SQLitePersister", "InMemoryPersister", "ResultCache", "LocalTracker", "history", "state_at",
    "register_serde",
    # sweeps and their results
    "Grid", "grid", "zipped", "sample", "uniform", "loguniform", "randint", "choice",
    "Sweep", "sweep", "ResultTable", "to_dataframe", "load_results", "report",
    "optimize", "Search", "Pruned", "sweep_notebook", "record",
    # run history (loaded on first use) and session settings
    "runs", "load_run", "compare", "delete_run", "delete_runs", "config",
    # notebook widgets (loaded on first use)
    "SweepPanel", "GraphView", "HistoryView", "RunsView",
    # errors
    "NbflowError", "StateKeyError", "ActionContractError", "MissingInputError",
    "ActionReturnTypeError", "GraphError", "ConditionError", "AsyncActionError", "HaltError",
    "UnknownExecutorError", "MissingDependencyError", "TaskFailed", "TasksCancelled", "Interrupted",
    "TaskTimeoutError", "HookError",
    "TaskPicklingError", "RemoteTaskError", "PersistenceError", "PersisterConflictError", "CacheKeyError",
    "SerializationError", "NotRecordedError", "SweepError", "StaleCodeError",
    "RunStoreError", "RunNotFoundError",
    "StateValueError", "HookContractError",
]  # fmt: skip


# Features the lower layers offer but the upper ones implement, found on first use (see
# nbflow.core.extensions): the core never imports viz, widgets or the notebook layer.


def _visualize():
    from nbflow.viz import visualize

    return visualize


def _show_graph_live():
    from nbflow.widgets import GraphView

    return GraphView.showing


def _live_table():
    from nbflow.notebook.live import live_table

    return live_table


extensions.provide("visualize", _visualize)
extensions.provide("show_graph_live", _show_graph_live)
extensions.provide("live_table", _live_table)


def load_ipython_extension(ipython) -> None:
    """``%load_ext nbflow``: register the ``%%parallel_map`` magic."""
    # Imported here, not at the top: `import nbflow` must not pull in IPython.
    from nbflow.notebook import load_ipython_extension as load

    load(ipython)


_WIDGETS = ("SweepPanel", "GraphView", "HistoryView", "RunsView")
_RUN_HISTORY = {
    "runs": "nbflow.sweeps.runs",
    "load_run": "nbflow.sweeps.runs",
    "delete_run": "nbflow.sweeps.runs",
    "delete_runs": "nbflow.sweeps.runs",
    "compare": "nbflow.sweeps.compare",
}


def __getattr__(name: str):
    # load_results brings pandas with it; `import nbflow` stays light until it is asked for.
    if name == "load_results":
        from nbflow.sweeps.export import load_results

        return load_results
    if name in _RUN_HISTORY:
        import importlib

        return getattr(importlib.import_module(_RUN_HISTORY[name]), name)
    # The widgets bring ipywidgets (and IPython's comm machinery) with them; likewise on demand.
    if name in _WIDGETS:
        from nbflow import widgets

        return getattr(widgets, name)
    msg = f"module 'nbflow' has no attribute {name!r}"
    raise AttributeError(msg)
