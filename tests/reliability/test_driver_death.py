"""When the driver process dies, a worker running a hung point does not live on."""

import os
import signal
import subprocess
import sys
import textwrap
import time

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    from nbflow import sweep

    def point(x):
        if x == 3:
            with open(sys.argv[1], "w") as f:
                f.write(str(os.getpid()))
            time.sleep(600)
        return x

    sweep(point, {"x": range(4)}, executor="processes", progress=False)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; it has exited all the same.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_driver_killed_while_a_point_hangs_leaves_no_worker(tmp_path):
    """SIGKILL the driver while its worker runs a point that sleeps for ten minutes: the worker exits within seconds."""
    script, pid_file = tmp_path / "driver.py", tmp_path / "worker.pid"
    script.write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), str(pid_file)])
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    worker = int(pid_file.read_text())
    assert _alive(worker)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker), f"worker {worker} outlived its driver"
