"""What a point prints goes to its row's log, df.nbflow.log(task_id), not to the cell; on every executor.

stdout, stderr, warnings and logging through the last-resort handler are captured per attempt,
travel back with the result from worker processes, are cached with it, and a failed point's log
ends with its traceback. capture=False lets the output through as before.
"""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys
import warnings

import pytest

from nbflow import Sweep, grid, sweep

# Logging as an unconfigured notebook has it: Python's last-resort handler, which writes to
# sys.stderr when it emits. (Under pytest the root logger has pytest's handler, so the test's
# logger gets the last-resort handler itself.)
_LOG = logging.getLogger("tests.chatty")
_LOG.addHandler(logging.lastResort)


def chatty(x):
    print(f"out {x}")
    print(f"err {x}", file=sys.stderr)
    warnings.warn(f"careful with {x}", stacklevel=1)
    _LOG.warning("logged %s", x)
    if x == 2:
        raise ValueError(f"bad {x}")
    return {"y": x}


def test_a_points_output_goes_to_its_log_and_not_to_the_cell(executor_name, capfd):
    df = sweep(chatty, {"x": [1, 2]}, executor=executor_name, progress=False)
    out, err = capfd.readouterr()
    assert "out 1" not in out + err and "careful" not in out + err and "logged" not in out + err
    first = df.nbflow.log(0)
    assert first.startswith("out 1\nerr 1\n") and first.endswith("logged 1\n")
    assert "UserWarning: careful with 1" in first
    failed = df.nbflow.log(1)
    assert failed.startswith("out 2\nerr 2\n")
    assert failed.rstrip().endswith("ValueError: bad 2")
    assert df["error"].tolist()[1] == "ValueError: bad 2"


def test_capture_false_lets_the_output_through(capsys):
    with pytest.warns(UserWarning, match="careful with 1"):
        df = sweep(chatty, {"x": [1]}, executor="sequential", capture=False, progress=False)
    out, err = capsys.readouterr()
    assert "out 1" in out and "err 1" in err
    assert df.nbflow.log(0) == ""


def test_output_outside_any_point_still_reaches_the_stream(capsys):
    sweep(chatty, {"x": [1]}, executor="threads", progress=False)
    print("after the sweep")
    assert "after the sweep" in capsys.readouterr().out


def test_cached_points_keep_their_logs(tmp_path):
    cache = str(tmp_path / "cache")
    sweep(chatty, {"x": [1]}, cache=cache, progress=False)
    again = sweep(chatty, {"x": [1]}, cache=cache, progress=False)
    assert again["status"].tolist() == ["cached"]
    assert again.nbflow.log(0).startswith("out 1\nerr 1\n")


def retried(marks, x):
    mark = pathlib.Path(marks) / str(x)
    first = not mark.exists()
    mark.touch()
    print("first attempt" if first else "second attempt")
    if first:
        raise RuntimeError("once")
    return x


def test_a_retried_point_keeps_the_output_of_its_last_attempt(tmp_path, executor_name):
    df = sweep(
        retried,
        grid(marks=[str(tmp_path)], x=[1]),
        executor=executor_name,
        retries=1,
        retry_backoff_s=0,
        progress=False,
    )
    assert df["attempts"].tolist() == [2]
    assert df.nbflow.log(0) == "second attempt\n"


def outer(n):
    print(f"outer {n} before")
    inner = Sweep(chatty, {"x": [1]}, executor="sequential", progress=False).run()
    print(f"outer {n} after")
    return {"inner_log": inner.nbflow.log(0)}


def test_a_point_running_a_sweep_of_its_own_keeps_its_output_apart(executor_name):
    df = sweep(outer, {"n": [7]}, executor=executor_name, progress=False)
    assert df.nbflow.log(0) == "outer 7 before\nouter 7 after\n"
    assert df["inner_log"].tolist()[0].startswith("out 1\nerr 1\n")


def writes_to_the_descriptor(x):
    os.write(2, b"straight to fd 2\n")
    return x


def test_writes_that_bypass_sys_stderr_are_not_captured(capfd):
    """As the README says: a C extension or subprocess writing to the file descriptor itself is not captured."""
    df = sweep(writes_to_the_descriptor, {"x": [1]}, executor="sequential", progress=False)
    assert "straight to fd 2" in capfd.readouterr().err
    assert df.nbflow.log(0) == ""


def test_logs_survive_export_and_load(tmp_path):
    from nbflow import load_results

    df = sweep(chatty, {"x": [1, 2]}, progress=False)
    back = load_results(df.nbflow.export(tmp_path / "runs.json"))
    assert back.nbflow.log(0) == df.nbflow.log(0) and back.nbflow.log(1) == df.nbflow.log(1)


@pytest.mark.parametrize("executor", ["threads", "async"])
def test_points_running_at_once_do_not_mix_their_output(executor):
    def talk(x):
        for i in range(50):
            print(f"{x}:{i}")
        return x

    df = sweep(talk, {"x": list(range(8))}, executor=executor, n_jobs=8, progress=False)
    for task in range(8):
        assert df.nbflow.log(task).splitlines() == [f"{task}:{i}" for i in range(50)]


def writes_bytes(x):
    sys.stdout.write(b"raw")


def test_writing_bytes_to_stdout_fails_the_point_as_it_would_without_capture(executor_name):
    df = sweep(writes_bytes, {"x": [1]}, executor=executor_name, progress=False)
    assert df["status"].tolist() == ["error"]
    assert df["error"].tolist() == ["TypeError: write() argument must be str, not bytes"]


def test_a_logging_handler_made_before_the_sweep_logs_to_the_points_log():
    """logging.basicConfig() at the top of a notebook, then a point that logs: the record is in its log, not the cell."""
    code = (
        "import logging, nbflow\n"
        "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')\n"
        "def fit(lr):\n"
        "    logging.getLogger('fit').info('lr is %s', lr)\n"
        "    return lr\n"
        "df = nbflow.sweep(fit, {'lr': [0.5]}, progress=False)\n"
        "print(repr(df.nbflow.log(0)))\n"
        "logging.getLogger('after').warning('outside a point')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == repr("INFO fit: lr is 0.5\n")
    assert done.stderr == "WARNING after: outside a point\n"  # and only that reached the real stderr


def writes_to_the_file_descriptor(x):
    import os

    os.write(2, b"from C: fd 2\n")
    return x


def test_what_a_c_extension_writes_to_file_descriptor_2_bypasses_capture(tmp_path):
    """Capture replaces sys.stderr, not the process's fd 2: such writes reach the terminal (the README says so)."""
    code = (
        "import nbflow, sys\n"
        f"sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r})\n"
        "from test_point_logs import writes_to_the_file_descriptor\n"
        "df = nbflow.sweep(writes_to_the_file_descriptor, {'x': [1]}, progress=False)\n"
        "print(repr(df.nbflow.log(0)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "''"
    assert "from C: fd 2" in done.stderr
