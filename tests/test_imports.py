"""Importing nbflow stays cheap: no notebook, plotting, DataFrame or joblib modules at import time."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ["IPython", "ipywidgets", "graphviz", "pandas", "joblib", "matplotlib"]
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["nbflow", "nbflow.core"])
def test_import_pulls_in_no_heavy_modules(module):
    """`import nbflow` loads none of IPython, ipywidgets, graphviz, pandas or joblib.

    Notebook-free scripts and worker processes import nbflow too, and every loky worker
    re-imports it, so a heavy import here slows every worker start.
    """
    code = (
        "import json, sys\n"
        f"import {module}\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"`import {module}` failed in a fresh process:\n{result.stderr}"
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == [], f"`import {module}` imported heavy modules: {loaded}"
