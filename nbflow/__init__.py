"""nbflow: a Jupyter-centric experimentation toolkit.

Importing nbflow is cheap: it pulls in no IPython, ipywidgets, graphviz or
pandas. Those load where they are used.
"""

from nbflow.core import (
    Action,
    Application,
    ApplicationBuilder,
    ApplicationContext,
    Condition,
    FunctionAction,
    Graph,
    GraphBuilder,
    LifecycleHook,
    State,
    StateList,
    Transition,
    action,
    default,
    expr,
    when,
)
from nbflow.errors import (
    ActionContractError,
    ActionReturnTypeError,
    AsyncActionError,
    ConditionError,
    GraphError,
    HaltError,
    MissingInputError,
    NbflowError,
    StateKeyError,
)

__version__ = "0.1.0"

__all__ = [
    # state
    "State", "StateList",
    # actions
    "Action", "FunctionAction", "action", "ApplicationContext",
    # graphs and transitions
    "Graph", "GraphBuilder", "Transition", "Condition", "when", "expr", "default",
    # applications
    "Application", "ApplicationBuilder", "LifecycleHook",
    # errors
    "NbflowError", "StateKeyError", "ActionContractError", "MissingInputError",
    "ActionReturnTypeError", "GraphError", "ConditionError", "AsyncActionError", "HaltError",
]  # fmt: skip
