"""The notebook's Stop during a sweep, in a real Jupyter kernel: the cell ends in an error, the partial
frame is where the user looks for it, and the next cell runs."""

import time

import pytest
from jupyter_client.manager import start_new_kernel

SETUP = """
import sys, threading, nbflow
HANG = threading.Event()  # nothing sets it: points from 4 on run until stopped

def train(x):
    if x >= 4:
        HANG.wait(600)
    with open({log!r}, "a") as f:
        f.write(f"{{x}}\\n")
    return {{"loss": x / 10}}


class Rows:  # a progress stand-in that logs each row as the sweep adds it

    def __init__(self, total, desc, unit):
        pass

    def update(self, n):
        with open({log!r} + ".rows", "a") as f:
            print("row", file=f)

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass
"""


@pytest.fixture
def kernel():
    """A real IPython kernel, as JupyterLab starts one; shut down afterwards."""
    km, kc = start_new_kernel(kernel_name="python3")
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def _execute(kc, code, timeout=60):
    """Run ``code`` as a cell; the shell reply's content and what the cell printed."""
    msg_id = kc.execute(code)
    return _collect(kc, msg_id, timeout)


def _collect(kc, msg_id, timeout):
    printed = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], "".join(printed)


def _stop_after(km, kc, code, log, finished):
    """Run ``code``, press Stop once ``finished`` points have written to ``log``; the cell's reply."""
    msg_id = kc.execute(code)
    deadline = time.monotonic() + 60
    while (not log.exists() or len(log.read_text().split()) < finished) and time.monotonic() < deadline:
        time.sleep(0.05)
    km.interrupt_kernel()
    return _collect(kc, msg_id, 60)


def test_stop_during_sweep_ends_the_cell_in_an_error_and_keeps_the_partial_frame(kernel, tmp_path):
    """Stop after 4 of 10 points: the cell errors (so Run All stops), sys.last_value.results has 4 ok and 6 cancelled."""
    km, kc = kernel
    log = tmp_path / "done.log"
    _execute(kc, SETUP.format(log=str(log)))
    # Gated on rows added, not on points returned: a point that has returned may not have its row yet.
    rows = log.with_name(log.name + ".rows")
    reply, _ = _stop_after(
        km, kc, "df = nbflow.sweep(train, {'x': range(10)}, executor='threads', progress=Rows)", rows, 4
    )
    assert reply["status"] == "error" and reply["ename"] == "Interrupted"
    assert "6 of 10 points never finished" in reply["evalue"]
    reply, printed = _execute(
        kc,
        "e = sys.last_value\n"
        "print(isinstance(e, KeyboardInterrupt), e.results['status'].value_counts().to_dict())",
    )
    assert reply["status"] == "ok"
    assert printed.strip() == "True {'cancelled': 6, 'ok': 4}"
    reply, printed = _execute(kc, "print('the next cell runs')")
    assert reply["status"] == "ok" and printed.strip() == "the next cell runs"


def test_stop_during_parallel_map_assigns_the_partial_frame_before_the_error(kernel, tmp_path):
    """%%parallel_map stopped after 4 points: the cell errors, and --out holds the partial frame."""
    km, kc = kernel
    log = tmp_path / "done.log"
    _execute(kc, SETUP.format(log=str(log)) + "\nget_ipython().run_line_magic('load_ext', 'nbflow')")
    cell = "%%parallel_map --out partial --no-progress x=range(10)\ntrain(x)"
    reply, _ = _stop_after(km, kc, cell, log, 4)
    assert reply["status"] == "error" and reply["ename"] == "Interrupted"
    assert "'partial'" in reply["evalue"]
    reply, printed = _execute(kc, "print(partial['status'].value_counts().to_dict())")
    assert printed.strip() == "{'cancelled': 6, 'ok': 4}"
