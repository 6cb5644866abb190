"""Which version of a user module's file the running code was loaded from.

A worker process imports a user module (``helpers.py`` beside the notebook) by name,
from the file as it is on disk when it first needs it. The notebook may run another
version: one it loaded before the file was edited (and not reloaded since), or a
newer one it reloaded after the worker had imported the old file. Either way the
worker would compute with other code than the cache key and the notebook say.

So each process remembers, per user module, a digest of the file as it was when the
module was (re)loaded, noticed by the module object or its spec changing (which is
what ``importlib.reload`` and a fresh import do). A parallel step refuses to send
tasks when the notebook's copy is behind its file, and a worker whose copy differs
from the notebook's reloads it.

A module is first seen when a step first reaches it (a worker: right after importing
it). A file edited between its import and that moment is taken as the loaded
version; reloading, or restarting the kernel, is the way out of that corner.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Iterable

from nbflow.errors import StaleCodeError

__all__ = ["loaded_versions", "check_not_stale", "match_versions"]

# module name -> (id of the module, id of its spec, digest of its file when it was loaded)
_LOADED: dict[str, tuple[int, int, str | None]] = {}


def _file_digest(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return hashlib.blake2b(f.read(), digest_size=16).hexdigest()
    except OSError:
        return None


def _loaded(name: str) -> str | None:
    module = sys.modules.get(name)
    if module is None:
        return None
    key = (id(module), id(getattr(module, "__spec__", None)))
    known = _LOADED.get(name)
    if known is None or known[:2] != key:
        # First seen, or (re)loaded since: the file as it is now is what was just run.
        known = _LOADED[name] = (*key, _file_digest(getattr(module, "__file__", None)))
    return known[2]


def loaded_versions(names: Iterable[str]) -> dict[str, str]:
    """``{module: digest}`` of the files the given user modules were loaded from (unreadable ones left out)."""
    versions = {}
    for name in sorted(names):
        digest = _loaded(name)
        if digest is not None:
            versions[name] = digest
    return versions


def check_not_stale(names: Iterable[str], action: str) -> None:
    """Raise `StaleCodeError` if a module's file changed since this process loaded it.

    Args:
        names: user modules the tasks' code reaches.
        action: the parallel action, for the message.
    """
    for name in sorted(names):
        loaded = _loaded(name)
        module = sys.modules.get(name)
        now = _file_digest(getattr(module, "__file__", None))
        if loaded is not None and now is not None and now != loaded:
            msg = f"Module {name!r} ({module.__file__}) was edited after this kernel loaded it, so the code '{action}' would run here is the old one, while worker processes would import the new file. Reload it first (importlib.reload({name})), or restart the kernel."
            raise StaleCodeError(msg)


def match_versions(versions: dict[str, str]) -> None:
    """In a worker: make each module's loaded version the notebook's one, reloading where they differ.

    Raises:
        StaleCodeError: a module's file here differs from the notebook's even after a reload.
    """
    for name, wanted in versions.items():
        if name not in sys.modules or _loaded(name) == wanted:
            continue  # not imported yet here: it will be, from the same file the notebook checked
        importlib.reload(sys.modules[name])
        if _loaded(name) != wanted:
            msg = f"Module {name!r} in this worker differs from the notebook's copy, even after reloading it: the file changed while the step ran, or the worker sees another file. Run again once it is saved."
            raise StaleCodeError(msg)
