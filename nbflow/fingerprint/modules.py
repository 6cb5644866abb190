"""Whose code a module is: the user's (hashed by what it does) or an installed package's (by name and version).

Example:
    >>> is_user_module("json"), is_user_module("__main__")
    (False, True)
"""

from __future__ import annotations

import functools
import os
import site
import sys
import sysconfig

__all__ = ["is_user_module", "package_version", "type_name"]


def type_name(t: type) -> str:
    """``module.QualName`` of a type: how a digest names it."""
    return f"{t.__module__}.{t.__qualname__}"


def package_version(module: str) -> str:
    """The ``__version__`` of ``module`` or of its top-level package; "" when neither has one."""
    for name in (module, module.partition(".")[0]):
        found = getattr(sys.modules.get(name), "__version__", None)
        if found is not None:
            return str(found)
    return ""


def is_user_module(name: str) -> bool:
    """Whether module ``name`` is the user's own code: a notebook, a script, or a module outside installed packages.

    User code is fingerprinted by what it does; installed packages and the standard
    library by name and version.
    """
    module = sys.modules.get(name)
    if module is None or name == "__main__":
        return True
    return _user_file(name.partition(".")[0], getattr(module, "__file__", None))


@functools.lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    """Folders whose modules are installed code (the standard library, site-packages), not the user's."""
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(site.getsitepackages() if hasattr(site, "getsitepackages") else ())
    roots.add(site.getusersitepackages() if hasattr(site, "getusersitepackages") else None)
    return tuple(sorted({os.path.realpath(r) + os.sep for r in roots if r}))


@functools.lru_cache(maxsize=4096)
def _user_file(top: str, file: str | None) -> bool:
    if top == "nbflow" or not file:
        # nbflow itself counts by its version; builtin and frozen modules have no file.
        return False
    real = os.path.realpath(file)
    return not real.startswith(_installed_roots())
