"""Every error nbflow raises on purpose.

Each class also subclasses the builtin a user would reach for in an ``except``
(a missing state key is a ``KeyError``, a malformed graph a ``ValueError``), so
code written against plain Python keeps working. Messages name the culprit and
the fix, and are built as one f-string where they are raised.
"""

from __future__ import annotations

__all__ = [
    "NbflowError",
    "RunStoreError",
    "RunNotFoundError",
    "Pruned",
    "StateKeyError",
    "StateValueError",
    "ActionContractError",
    "MissingInputError",
    "ActionReturnTypeError",
    "GraphError",
    "ConditionError",
    "AsyncActionError",
    "HaltError",
    "UnknownExecutorError",
    "MissingDependencyError",
    "TaskFailed",
    "TasksCancelled",
    "Interrupted",
    "TaskTimeoutError",
    "HookError",
    "HookContractError",
    "TaskPicklingError",
    "WorkerCrashedError",
    "PersistenceError",
    "SerializationError",
    "SweepError",
    "ResultsError",
    "ResultsColumnError",
    "ExportError",
    "ResultsNotFoundError",
    "ResultsExistError",
    "PersisterConflictError",
    "RemoteTaskError",
    "CacheKeyError",
    "StaleCodeError",
    "summarize_exception",
    "exception_text",
]


def summarize_exception(exc: BaseException) -> str:
    """``"Type: first line of the message"``, one line, even when the exception's ``__str__`` fails.

    A table cell holds this; the full message and traceback live in the point's log.

    Example:
        >>> summarize_exception(ValueError("bad lr\\nsee the log"))
        'ValueError: bad lr ...'
    """
    name = getattr(exc, "original_type", None) or type(exc).__name__
    first, _, rest = exception_text(exc).strip().partition("\n")
    return f"{name}: {first}{' ...' if rest.strip() else ''}" if first else name


def exception_text(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder naming its type when its ``__str__`` itself fails."""
    try:
        return str(exc)
    except KeyboardInterrupt:
        raise
    except BaseException:
        return f"<unprintable {type(exc).__name__} object>"


class NbflowError(Exception):
    """Base class of every error nbflow raises on purpose."""


class StateKeyError(NbflowError, KeyError):
    """A state key that does not exist was read."""

    def __str__(self) -> str:
        # KeyError.__str__ quotes its argument, which turns a sentence into a repr.
        return str(self.args[0]) if self.args else ""


class StateValueError(NbflowError, TypeError, ValueError):
    """A state operation met a value of the wrong kind (appending to a number, incrementing text).

    Both a TypeError (nbflow's first answer) and a ValueError (what Apache Burr raises).
    """


class ActionContractError(NbflowError, KeyError):
    """An action read or wrote a key it did not declare, or read a key the state lacks."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingInputError(NbflowError, TypeError):
    """An action declares an input that the caller did not give."""


class ActionReturnTypeError(NbflowError, TypeError):
    """An action returned something other than what its kind must return."""


class GraphError(NbflowError, ValueError):
    """A graph or application is malformed: unknown actions, duplicates, no entrypoint."""


class ConditionError(NbflowError, ValueError):
    """A transition condition does not parse, or cannot be evaluated on a state."""


class AsyncActionError(NbflowError, TypeError):
    """An async action was run through the synchronous API."""


class HaltError(NbflowError, ValueError):
    """``halt_after`` or ``halt_before`` names an action the graph does not have."""


class UnknownExecutorError(NbflowError, ValueError):
    """An executor name that nothing registered."""


class MissingDependencyError(NbflowError, ImportError):
    """An optional package nbflow needs for this feature is not installed."""


class _PartialResults(NbflowError, RuntimeError):
    """Raised after some tasks finished: what ``reduce`` made of them is kept on the error.

    Attributes:
        partial_state: the State ``reduce`` returned from the finished tasks (None
            if ``reduce`` itself was interrupted).
        finished: how many tasks had finished.
        task_index: the position of the task that failed (for `TaskFailed`).
    """

    def __init__(
        self, message: str, partial_state: object = None, finished: int = 0, task_index: int | None = None
    ) -> None:
        super().__init__(message)
        self.partial_state = partial_state
        self.finished = finished
        self.task_index = task_index


class TaskFailed(_PartialResults):
    """A task of a parallel action raised, with ``on_error="raise"``."""


class TasksCancelled(_PartialResults):
    """A parallel action was cancelled (``cancel()`` or Ctrl-C) before all its tasks finished."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGINT or the notebook's Stop during an nbflow run; what finished is kept on it.

    It is a ``KeyboardInterrupt``, so ``except Exception`` never swallows it and a
    notebook's Run All stops at the cell. Deliberately not an `NbflowError` (which is
    an ``Exception``).

    Attributes:
        partial_state: for a parallel step, the State ``reduce`` made of the finished
            tasks (None if ``reduce`` itself was interrupted).
        results: for a sweep, the partial DataFrame: the finished rows as they are and
            the rest ``cancelled`` (``sweep.results`` holds the same frame).
        finished: how many tasks had finished.
    """

    def __init__(self, message: str, partial_state: object = None, finished: int = 0, results: object = None):
        super().__init__(message)
        self.partial_state = partial_state
        self.finished = finished
        self.results = results

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TaskTimeoutError(NbflowError, TimeoutError):
    """A task ran past its ``timeout``; a sweep records it as a ``timeout`` row."""


class HookError(_PartialResults):
    """A parallel action's own hook (``tasks``, ``states``, ``actions``, ``reduce``) raised.

    The message names the action and the hook; the hook's exception is the ``__cause__``,
    and what the finished tasks gave is in ``partial_state`` (or, when ``reduce`` failed,
    the finished sub-states are in ``finished_states``).
    """

    finished_states: list | None = None


class HookContractError(NbflowError, TypeError):
    """A parallel action's hook gave something of the wrong kind (a task that is not a SubGraphTask,
    a state that is not a State, an action that is not an action)."""


class WorkerCrashedError(NbflowError, RuntimeError):
    """A task's worker process died, twice, while running it."""


class TaskPicklingError(NbflowError, TypeError):
    """A task, or a result, could not be sent across a process boundary."""


class PersistenceError(NbflowError, OSError):
    """A persister, cache or tracker could not read or write its storage."""


class PersisterConflictError(PersistenceError):
    """Another application saved steps of the same app id: two live writers would overwrite each other."""


class CacheKeyError(NbflowError, ValueError):
    """A result cache could not compute a key: its ``depends_on`` failed."""


class StaleCodeError(NbflowError, RuntimeError):
    """A user module's file is not the version the code was loaded from: workers would run other code."""


class RemoteTaskError(NbflowError, RuntimeError):
    """Stands in for a task's exception that could not travel back from its worker process.

    Attributes:
        original_type: the exception's class name (``"TwoArgs"``), which the error column shows.
        original_module: the module that defined it.
    """

    def __init__(self, message: str, original_type: str, original_module: str = "") -> None:
        super().__init__(message)
        self.original_type = original_type
        self.original_module = original_module

    def __reduce__(self):
        return (type(self), (str(self), self.original_type, self.original_module))


class SerializationError(NbflowError, TypeError):
    """A value could not be turned into JSON, or stored JSON could not be turned back into a value."""


class NotRecordedError(NbflowError, KeyError):
    """A tracker or persister has no record of the application or step asked for."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SweepError(NbflowError, ValueError):
    """A sweep's grid is malformed: a bad axis, mismatched zip lengths, clashing axes, a bad distribution."""


class Pruned(Exception):
    """The search stopped this point early: raised by `nbflow.report` in a point the pruner judged hopeless.

    Not an `NbflowError` and not a failure: the point ends with status ``pruned``, what it
    reported kept as its curve. A point may raise it itself to stop early. Let it propagate:
    code that catches it and goes on only runs until its next ``report``.
    """

    def __init__(self, step: int | None = None) -> None:
        at = f" at step {step}" if step is not None else ""
        super().__init__(f"pruned{at}: the search judged this point hopeless from what it reported")
        self.step = step

    def __reduce__(self):
        return (Pruned, (self.step,))


class ResultsError(NbflowError, ValueError):
    """A results frame cannot answer what was asked: no status column, no eligible row, a bad mode."""


class ResultsColumnError(NbflowError, KeyError):
    """A results frame has no column of the name asked for."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ExportError(NbflowError, ValueError):
    """Results cannot be written to, or read from, that path or in that format."""


class ResultsNotFoundError(NbflowError, FileNotFoundError):
    """``load_results`` was given a path where there is no file."""


class RunStoreError(PersistenceError):
    """The run store (``.nbflow/runs``) or one of its files cannot be read or written."""


class RunNotFoundError(NbflowError, KeyError):
    """No run with that id in the run store."""

    def __str__(self) -> str:
        # KeyError would print the message as a quoted repr.
        return str(self.args[0]) if self.args else ""


class ResultsExistError(NbflowError, FileExistsError):
    """``export(..., overwrite=False)`` was given a path where a file already exists."""
