"""Apache Burr's names in one module, for code moving over from Burr.

``from nbflow.burr import ...`` gives what these Burr imports gave::

    burr.core                 Action, ApplicationBuilder, ApplicationContext, ApplicationGraph, State, action
    burr.core.action          Input, Result
    burr.core.graph           Graph, GraphBuilder
    burr.core.parallelism     MapActions, MapActionsAndStates, MapStates, RunnableGraph, SubGraphTask,
                              TaskBasedParallelAction, map_reduce_action
    burr.core.persistence     BaseStateLoader, BaseStateSaver, BaseStatePersister, PersistedStateData
    burr.lifecycle            PreRunStepHook, PostRunStepHook (and Async), PostApplicationCreateHook...
    burr.tracking.base        SyncTrackingClient, TrackingClient
    burr.visibility           ActionSpan
    burr.common.types         types (types.ParentPointer)

Most are nbflow's own classes under Burr's names; the persistence and tracking bases are
small here, for subclasses written against Burr (nbflow calls their methods with Burr's
arguments). The parallel actions here also keep Burr's order: ``reduce`` receives the
sub-states in task order (``ordered=True``), where ``nbflow.MapStates`` and the others
stream them as they complete. ``docs/for-burr-users.md`` lists what differs and why.
"""

from __future__ import annotations

import abc
import types as _types
from dataclasses import dataclass
from typing import Any, TypedDict

from nbflow.core import (
    Action,
    ApplicationBuilder,
    ApplicationContext,
    Graph,
    GraphBuilder,
    Input,
    PostApplicationCreateHook,
    PostApplicationExecuteCallHook,
    PostRunStepHook,
    PostRunStepHookAsync,
    PreApplicationExecuteCallHook,
    PreRunStepHook,
    PreRunStepHookAsync,
    Result,
    State,
    action,
)
from nbflow.core.hooks import ParentPointer
from nbflow.parallel import MapActions as _MapActions
from nbflow.parallel import MapActionsAndStates as _MapActionsAndStates
from nbflow.parallel import MapStates as _MapStates
from nbflow.parallel import RunnableGraph, SubGraphTask
from nbflow.parallel import TaskBasedParallelAction as _TaskBasedParallelAction
from nbflow.parallel import map_reduce_action as _map_reduce_action

__all__ = [
    "Action", "ApplicationBuilder", "ApplicationContext", "ApplicationGraph", "State", "action",
    "Input", "Result", "Graph", "GraphBuilder",
    "MapActions", "MapActionsAndStates", "MapStates", "RunnableGraph", "SubGraphTask",
    "TaskBasedParallelAction", "map_reduce_action",
    "BaseStateLoader", "BaseStateSaver", "BaseStatePersister", "PersistedStateData",
    "PreRunStepHook", "PostRunStepHook", "PreRunStepHookAsync", "PostRunStepHookAsync",
    "PostApplicationCreateHook", "PreApplicationExecuteCallHook", "PostApplicationExecuteCallHook",
    "SyncTrackingClient", "TrackingClient", "ActionSpan", "types",
]  # fmt: skip

# Burr hands reduce the sub-states in task order; these do too.


class TaskBasedParallelAction(_TaskBasedParallelAction):
    """`nbflow.TaskBasedParallelAction`, reducing in task order as Burr does."""

    ordered = True


class MapActionsAndStates(_MapActionsAndStates):
    """`nbflow.MapActionsAndStates`, reducing in task order as Burr does."""

    ordered = True


class MapStates(_MapStates):
    """`nbflow.MapStates`, reducing in task order as Burr does."""

    ordered = True


class MapActions(_MapActions):
    """`nbflow.MapActions`, reducing in task order as Burr does."""

    ordered = True


def map_reduce_action(*args: Any, **kwargs: Any) -> _MapActionsAndStates:
    """`nbflow.map_reduce_action`, reducing in task order as Burr does."""
    step = _map_reduce_action(*args, **kwargs)
    step.ordered = True
    return step


# Burr's ApplicationGraph is the graph an application runs; nbflow keeps the entrypoint on the app.
ApplicationGraph = Graph

types = _types.SimpleNamespace(ParentPointer=ParentPointer)


class PersistedStateData(TypedDict):
    """What a Burr persister's ``load`` returns; nbflow reads it as a `PersistedRecord`."""

    partition_key: str | None
    app_id: str
    sequence_id: int
    position: str
    state: State
    created_at: str
    status: str


class BaseStateLoader(abc.ABC):
    """Burr's loader: ``load(partition_key, app_id, sequence_id=None, **kwargs)`` returns `PersistedStateData` or None."""

    @abc.abstractmethod
    def load(
        self, partition_key: str | None, app_id: str | None, sequence_id: int | None = None, **kwargs: Any
    ) -> PersistedStateData | None:
        """The latest saved step of ``app_id``, or None."""

    @abc.abstractmethod
    def list_app_ids(self, partition_key: str | None, **kwargs: Any) -> list[str]:
        """The app ids saved under ``partition_key``."""


class BaseStateSaver(abc.ABC):
    """Burr's saver: ``save(partition_key, app_id, sequence_id, position, state, status, **kwargs)``."""

    @abc.abstractmethod
    def save(
        self,
        partition_key: str | None,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: str,
        **kwargs: Any,
    ) -> None:
        """Save one step."""


class BaseStatePersister(BaseStateLoader, BaseStateSaver, abc.ABC):
    """Both at once, as Burr's persisters are."""


class SyncTrackingClient:
    """Burr's tracking-client base: every hook is a no-op here; override the ones you need.

    nbflow calls ``post_application_create``, ``pre_run_step`` and ``post_run_step``
    (with Burr's keyword arguments); spans, attributes and streams are Burr's own and
    are never called. A ``copy()`` method makes each sub-application track into a copy.
    """

    def post_application_create(self, **kwargs: Any) -> None:
        """When an application first runs."""

    def pre_run_step(self, **kwargs: Any) -> None:
        """Before a step."""

    def post_run_step(self, **kwargs: Any) -> None:
        """After a step."""

    def pre_start_span(self, **kwargs: Any) -> None:
        """Burr's spans: not called by nbflow."""

    def post_end_span(self, **kwargs: Any) -> None:
        """Burr's spans: not called by nbflow."""

    def do_log_attributes(self, **kwargs: Any) -> None:
        """Burr's attributes: not called by nbflow."""

    def pre_start_stream(self, **kwargs: Any) -> None:
        """Burr's streaming actions: not called by nbflow."""

    def post_stream_item(self, **kwargs: Any) -> None:
        """Burr's streaming actions: not called by nbflow."""

    def post_end_stream(self, **kwargs: Any) -> None:
        """Burr's streaming actions: not called by nbflow."""


TrackingClient = SyncTrackingClient


@dataclass
class ActionSpan:
    """Burr's span type, for annotations in code written against Burr; nbflow creates none."""

    action: str
    name: str
    sequence_id: int
    parent: ActionSpan | None = None
