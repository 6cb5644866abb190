"""The engine: state, actions, graphs and applications. Standard library only."""

from nbflow.core.actions import Action, ApplicationContext, FunctionAction, action
from nbflow.core.application import Application
from nbflow.core.builder import ApplicationBuilder
from nbflow.core.conditions import Condition, default, expr, when
from nbflow.core.graph import Graph, GraphBuilder, Transition
from nbflow.core.hooks import (
    LifecycleHook,
    PostApplicationCreateHook,
    PostApplicationExecuteCallHook,
    PostRunStepHook,
    PostRunStepHookAsync,
    PreApplicationExecuteCallHook,
    PreRunStepHook,
    PreRunStepHookAsync,
)
from nbflow.core.passthrough import Input, Result
from nbflow.core.state import State, StateList

__all__ = [
    "State", "StateList",
    "Action", "FunctionAction", "action", "ApplicationContext",
    "Condition", "when", "expr", "default",
    "Graph", "GraphBuilder", "Transition",
    "Application", "ApplicationBuilder", "LifecycleHook", "Input", "Result",
    "PreRunStepHook", "PostRunStepHook", "PreRunStepHookAsync", "PostRunStepHookAsync",
    "PostApplicationCreateHook", "PreApplicationExecuteCallHook", "PostApplicationExecuteCallHook",
]  # fmt: skip
