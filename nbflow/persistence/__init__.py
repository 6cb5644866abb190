"""Persistence: saved steps (SQLite built in), the result cache, step tracking, and the JSON serde they share.

Depends on the core only; the parallel layer uses it to resume and cache tasks.
"""

from nbflow.persistence.cache import ResultCache
from nbflow.persistence.memory import InMemoryPersister
from nbflow.persistence.serde import register_serde
from nbflow.persistence.sqlite import SQLitePersister
from nbflow.persistence.tracking import LocalTracker, history, state_at

__all__ = [
    "SQLitePersister", "InMemoryPersister",
    "ResultCache",
    "LocalTracker", "history", "state_at",
    "register_serde",
]  # fmt: skip
