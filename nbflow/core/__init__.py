"""The engine: state, actions, graphs and applications. Standard library only."""

from nbflow.core.actions import Action, ApplicationContext, FunctionAction, action
from nbflow.core.application import Application
from nbflow.core.builder import ApplicationBuilder
from nbflow.core.conditions import Condition, default, expr, when
from nbflow.core.graph import Graph, GraphBuilder, Transition
from nbflow.core.hooks import LifecycleHook
from nbflow.core.state import State, StateList

__all__ = [
    "State", "StateList",
    "Action", "FunctionAction", "action", "ApplicationContext",
    "Condition", "when", "expr", "default",
    "Graph", "GraphBuilder", "Transition",
    "Application", "ApplicationBuilder", "LifecycleHook",
]  # fmt: skip
