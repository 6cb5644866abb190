"""Without the dask and ray extras, the cluster tests skip rather than fail."""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_cluster_tests_skip_without_the_cluster_extras():
    """test_cluster.py on a machine without distributed or ray: everything passes or skips."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "_no_cluster_extras",
         str(HERE / "test_cluster.py")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-3000:]
    assert "skipped" in summary and "failed" not in summary and "error" not in summary
