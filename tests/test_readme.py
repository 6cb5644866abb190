"""The README's Python examples run as written and print what their comments say."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
EXPECTED = re.compile(r"^print\(.*\)\s*#\s*(?P<out>.+)$")


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs_and_prints_what_it_says(block, tmp_path):
    """Each block runs in a fresh interpreter; every `print(...)  # value` prints that value."""
    # Worker processes started by an example must not outlive it.
    script = block + "\nfrom nbflow import MultiProcessExecutor\nMultiProcessExecutor().shutdown()\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    expected = [m["out"].strip() for line in block.splitlines() if (m := EXPECTED.match(line.strip()))]
    assert done.stdout.splitlines() == expected
