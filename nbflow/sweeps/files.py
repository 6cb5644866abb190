"""Writing result files safely: supported kinds, no writing through links elsewhere, atomic replacement.

A result file and its sidecar are written through temporary files beside them
and moved into place together, so a failure (a full disk) leaves what was there
untouched, and a CSV never ends up beside the sidecar of another export.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO

from nbflow.errors import ExportError

__all__ = [
    "SUPPORTED_EXTENSIONS", "kind_of", "refuse_link_elsewhere", "refuse_non_file", "write_atomic", "warn_user",
]  # fmt: skip

SUPPORTED_EXTENSIONS = (".csv", ".json", ".parquet")


def kind_of(path: Path, doing: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        shown = repr(suffix) if suffix else "no extension"
        msg = f"Cannot {doing} {path}: {shown} is not a supported format. Supported extensions: {', '.join(SUPPORTED_EXTENSIONS)}; end the file name with one of them."
        raise ExportError(msg)
    return suffix


def refuse_link_elsewhere(given: Path, target: Path, doing: str) -> None:
    """Refuse ``given`` if it is a symbolic link whose ``target`` lies outside ``given``'s own folder."""
    folder = given.parent.resolve()
    if given.is_symlink() and target.parent != folder:
        msg = f"Cannot {doing} {given}: it is a symbolic link to {target}, outside {folder}, and nbflow does not write through links that lead elsewhere. Remove the link, or pass {target} itself if that is where the results should go."
        raise ExportError(msg)


def refuse_non_file(target: Path, doing: str) -> None:
    if target.is_dir():
        msg = f"Cannot {doing} {target}: it is a directory. Pass a file path inside it, e.g. {target / ('results' + target.suffix)}."
        raise ExportError(msg)
    if target.exists() and not target.is_file():
        msg = f"Cannot {doing} {target}: it exists and is not a regular file. Choose another path."
        raise ExportError(msg)


def write_atomic(*files: tuple[Path, Callable[[IO[bytes]], None]]) -> None:
    """Write each ``(target, write)`` through a temporary file beside it, then move them all into place.

    Nothing is moved until every file is written, so a failure (a full disk) leaves the old files
    as they were, and a CSV never ends up beside the sidecar of another export.
    """
    written: list[tuple[str, Path]] = []
    target = files[0][0]
    try:
        for target, write in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                mode = stat.S_IMODE(target.stat().st_mode)
            except FileNotFoundError:
                mode = 0o600
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            written.append((tmp, target))
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
        for tmp, target in written:
            os.replace(tmp, target)
    except BaseException as exc:
        for tmp, _ in written:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise OSError(exc.errno, _write_failed(files[0][0], target, exc)) from exc
        raise


# The OS refused the write for want of room: a full disk, a quota, a file-size limit (ulimit -f).
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def _write_failed(main: Path, failed: Path, exc: OSError) -> str:
    what = str(main) if failed == main else f"{main} (its sidecar {failed.name})"
    kept = "the file already there is unchanged" if main.exists() else "no file was left there"
    if exc.errno in _NO_ROOM:
        return f"Cannot export to {what}: {exc.strerror}; the disk is full, or the file reached a size limit (a quota, or ulimit -f). Free some space or raise the limit, or export elsewhere; {kept}."
    return f"Cannot export to {what}: {exc.strerror}. Check that the folder is writable, or export elsewhere; {kept}."


def warn_user(msg: str) -> None:
    # Point the warning at the user's call, however deep inside this package it was raised.
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("nbflow.sweeps."):
        frame, level = frame.f_back, level + 1
    warnings.warn(msg, UserWarning, stacklevel=level)
