"""`record`: values a swept notebook saves for its row, and where its reports go.

A notebook that `nbflow.sweep_notebook` runs executes on a kernel of its own, a process the
sweep cannot reach into. So the sweep injects, beside the point's parameters, a folder for
that run (``_nbflow_record_to``, see `RECORD_TO`); ``nbflow.record(name, value)`` writes each
value there through nbflow's serde, and ``nbflow.report(...)`` appends its metrics there.
When the notebook has run, the sweep reads the folder back: records become columns, reports
the point's curve. Outside such a run `record` does nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from nbflow.persistence.serde import dumps, loads

__all__ = ["record", "RECORD_TO", "recording_folder", "append_report", "read_recorded"]

# The variable the sweep injects into the notebook, beside its parameters.
RECORD_TO = "_nbflow_record_to"
_REPORTS = "reports.jsonl"


def recording_folder() -> Path | None:
    """Where this notebook run records, when a sweep runs it; else None."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    folder = shell.user_ns.get(RECORD_TO) if shell is not None else None
    return Path(folder) if isinstance(folder, str) and folder else None


def record(name: str, value: Any) -> None:
    """Save ``value`` under ``name`` for this notebook's row of a `nbflow.sweep_notebook`.

    The value goes through nbflow's serde, so numbers, strings, lists, dicts, DataFrames and
    arrays come back as they were. Recording a name again replaces the value. Outside a
    notebook sweep it does nothing, so the notebook runs by hand as before.

    Raises:
        TypeError: ``name`` is not a non-empty str.
        SerializationError: the value cannot be stored (the message names the fix).
    """
    if not isinstance(name, str) or not name:
        msg = f"record(name, value) takes the column's name as a non-empty str, got {name!r}."
        raise TypeError(msg)
    folder = recording_folder()
    if folder is None:
        return
    text = dumps(value, path=name)
    target = folder / f"{len(list(folder.glob('*.value.json'))):06d}.value.json"
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps({"name": name, "value": text}))
    os.replace(temporary, target)  # whole or not at all: a kernel killed mid-write leaves no half


def append_report(folder: Path, step: int, metrics: dict) -> None:
    """Append one report of the notebook run recording in ``folder``."""
    with open(folder / _REPORTS, "a") as out:
        out.write(json.dumps([step, metrics]) + "\n")


def read_recorded(folder: Path) -> tuple[dict[str, Any], list[tuple[int, dict]]]:
    """What a notebook run recorded in ``folder``: ``(values by name, reports in order)``."""
    values: dict[str, Any] = {}
    for path in sorted(folder.glob("*.value.json")):
        item = json.loads(path.read_text())
        values[item["name"]] = loads(item["value"])
    reports: list[tuple[int, dict]] = []
    path = folder / _REPORTS
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                step, metrics = json.loads(line)
                reports.append((step, metrics))
    return values, reports
