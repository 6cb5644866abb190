"""End to end in a real browser: JupyterLab runs notebooks/06_widgets.ipynb in headless Chromium, and the widgets work.

The unit tests drive the widgets' Python models; only a browser shows that the
front end renders them, that a click reaches the kernel, and that updates made
from the sweep's background thread arrive. Two more notebooks written here
check a live sweep's view and RunsView comparing two recorded runs. The tests
also refresh the screenshots the README shows (docs/screenshots/).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO_ROOT / "notebooks" / "06_widgets.ipynb"
# The README's screenshots are rewritten only on request (NBFLOW_UPDATE_SCREENSHOTS=1), so an
# ordinary test run leaves the working tree clean; otherwise they go to the test's temp folder.
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
# The panel in the notebook sweeps lr 5 × depth 4 × optimizer 2.
EXPECTED_ROWS = 40
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Every wait has one of these; none is an assertion about speed.
START_S, RUN_S, STEP_S = 90, 180, 30


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a free local port, no token, serving a copy of the notebook; stopped afterwards."""
    if importlib.util.find_spec("jupyterlab") is None:
        pytest.skip(f"JupyterLab is not installed in {sys.prefix}; install it with pip install -e '.[dev]'.")
    root = tmp_path / "root"
    root.mkdir()
    # A copy: JupyterLab autosaves open notebooks, which would overwrite the outputs nbval compares.
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    # What `jupyter labextension disable --level=user` writes: the "Jupyter news?" popup covers the page.
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    # Settings, workspaces and runtime files go to the test's folder, not the user's.
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    port = _free_port()
    log = tmp_path / "jupyter.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode} before serving:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {url} within {START_S} s:\n{_tail(log)}")
                time.sleep(0.2)
        yield url, log
    finally:
        # SIGTERM makes the server shut its kernels down; only if it hangs, kill the group we started.
        server.terminate()
        try:
            server.wait(timeout=STEP_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=STEP_S)


def _wait_for(page, script: str, what: str, timeout_s: float, log: Path, arg=None) -> None:
    """Wait until the JS predicate holds, or fail saying what did not happen (with the server log)."""
    try:
        page.wait_for_function(script, arg=arg, timeout=timeout_s * 1000)
    except Exception as exc:
        page.screenshot(path=str(log.parent / "failure.png"))
        pytest.fail(
            f"{what} did not happen within {timeout_s} s ({type(exc).__name__}); screenshot in {log.parent / 'failure.png'}\n{_tail(log)}"
        )


@contextlib.contextmanager
def _running(lab, notebook: str, height: int, width: int = 1280):
    """A headless Chromium page with ``notebook`` open in the lab and all its cells started; closed after."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed; install it with pip install -e '.[dev]'."
    )
    chromium = _chromium()
    if chromium is None:
        pytest.skip(
            "Chromium not found at /usr/bin/chromium or on PATH; install it with apt-get install chromium (scripts/_setup.sh does as root)."
        )
    url, log = lab
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_FLAGS, headless=True, timeout=START_S * 1000
        )
        page = browser.new_page(viewport={"width": width, "height": height})
        try:
            page.set_default_timeout(STEP_S * 1000)
            page.goto(f"{url}/lab/tree/{notebook}", timeout=START_S * 1000)
            _wait_for(
                page,
                """() => {
                    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                    const kernel = panel && panel.sessionContext && panel.sessionContext.session
                        && panel.sessionContext.session.kernel;
                    return !!kernel && kernel.status === 'idle';
                }""",
                "the notebook opening with an idle kernel",
                START_S,
                log,
            )
            # Not awaited: the command's promise is not needed, and only conditions are waited for.
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            yield page
        finally:
            # Stop the kernel from the page too, so nothing outlives the test even if the server must be killed.
            try:
                page.evaluate(
                    """() => Promise.race([
                        window.jupyterapp.serviceManager.sessions.shutdownAll(),
                        new Promise(resolve => setTimeout(resolve, 10000)),
                    ])"""
                )
            except Exception:
                pass
            browser.close()


def _screenshots(log: Path) -> Path:
    shots = SCREENSHOTS if os.environ.get("NBFLOW_UPDATE_SCREENSHOTS") == "1" else log.parent
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def test_browser_widgets_render_run_and_show_results(lab):
    """In JupyterLab every widget renders; a click on Run sweeps all 40 points, the bar reaches 100%, the table has 40 rows."""
    _, log = lab
    shots = _screenshots(log)
    # Tall enough that each widget fits whole in its screenshot.
    with _running(lab, NOTEBOOK.name, height=2000) as page:
        _wait_for(
            page,
            """() => {
                const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
            }""",
            "every cell running to completion",
            RUN_S,
            log,
        )
        _wait_for(
            page,
            "() => !!document.querySelector('.nbflow-sweep-panel') && !!document.querySelector('.nbflow-history-view')",
            "the sweep panel and the history view rendering",
            STEP_S,
            log,
        )

        # The notebook ran the panel once from code (run 1); the click makes run 2.
        page.locator(".nbflow-sweep-panel button.nbflow-run").click(timeout=STEP_S * 1000)
        _wait_for(
            page,
            """() => {
                const status = document.querySelector('.nbflow-sweep-panel .nbflow-status');
                return !!status && status.textContent.trim().startsWith('Run 2 finished');
            }""",
            "the sweep started by clicking Run finishing",
            RUN_S,
            log,
        )

        text = page.evaluate("() => document.body.innerText")
        assert "Loading widget" not in text
        assert "Error displaying widget" not in text
        # No cell failed; the history view's traceback of a failed task is the notebook's point.
        outputs = page.evaluate(
            """() => [...document.querySelectorAll('.jp-OutputArea-output')]
                    .filter(o => !o.querySelector('.nbflow-history-view'))
                    .map(o => o.innerText).join('\\n')"""
        )
        assert "Traceback" not in outputs
        status = page.locator(".nbflow-sweep-panel .nbflow-status").inner_text()
        assert status.startswith(f"Run 2 finished: {EXPECTED_ROWS} of {EXPECTED_ROWS} points")
        bar = page.locator(".nbflow-sweep-panel .nbflow-progress .progress-bar")
        assert bar.evaluate("el => el.style.width") == "100%"
        assert "progress-bar-success" in bar.get_attribute("class")
        assert page.locator(".nbflow-sweep-panel .nbflow-sweep-table tbody tr").count() == EXPECTED_ROWS
        points = page.locator(".nbflow-sweep-panel svg.nbflow-plot g[id^='nbflow-point-']")
        assert points.count() == EXPECTED_ROWS
        # Hovering a point shows its parameters: the browser's tooltip is the point's <title>.
        assert points.first.locator("title").text_content().startswith("lr=")
        # A log slider reads out 0.001 as typed, not 0.00100.
        assert "0.001" in page.locator(".nbflow-sweep-panel .widget-readout").all_inner_texts()
        # A fully selected multi-select is drawn selected (white on blue), not grey as if disabled.
        checked = page.locator(".nbflow-sweep-panel select[multiple] option:checked")
        assert checked.count() == 2
        assert checked.first.evaluate("o => getComputedStyle(o).color") == "rgb(255, 255, 255)"

        graph = page.locator(".jp-CodeCell", has_text="view = GraphView(app)").locator(
            ".jp-OutputArea-output .widget-html", has=page.locator("svg")
        )
        assert graph.count() == 1
        assert "search" in graph.locator("svg").text_content()
        history = page.locator(".nbflow-history-view")
        # The notebook ends filtered to the two failed tasks, one of them chosen.
        options = history.locator("select option").evaluate_all("os => os.map(o => o.textContent)")
        # The front end draws every space of a label as a non-breaking one.
        assert [" ".join(o.replace("\u00a0", " ").split()) for o in options[1:]] == [
            "↳ fit(lr=1.0) ✗ failed",
            "↳ fit(lr=0.8) ✗ failed",
        ]
        assert "Traceback (most recent call last)" in history.text_content()

        page.locator(".nbflow-sweep-panel").screenshot(path=str(shots / "sweep_panel.png"))
        graph.locator("svg").screenshot(path=str(shots / "graph_view.png"))


# A sweep whose points report a curve, then hold at epoch 6 until the test has taken the
# mid-run screenshot and creates the file `release` beside the notebook.
_LIVE_SWEEP = """\
import pathlib, time
import nbflow

def train(lr, depth):
    for epoch in range(12):
        nbflow.report(step=epoch, loss=1 / (1 + lr * epoch * depth))
        if epoch == 5:
            while not pathlib.Path("release").exists():
                time.sleep(0.05)
        if lr == 1.0 and depth == 4 and epoch == 8:
            raise FloatingPointError("loss diverged at epoch 8")
    return {"acc": 1 - 1 / (1 + lr * depth)}

df = nbflow.sweep(train, {"lr": [0.01, 0.1, 1.0], "depth": [2, 4]}, n_jobs=6, progress=False)
"""


def test_browser_live_sweep_plots_curves_while_it_runs_and_leaves_a_summary(lab):
    """Mid-run the live view shows the rows so far beside a plot of every point's curve; at the end a static summary and image stay."""
    import nbformat

    _, log = lab
    root = log.parent / "root"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(_LIVE_SWEEP)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "live_sweep.ipynb")
    shots = _screenshots(log)
    with _running(lab, "live_sweep.ipynb", height=1100) as page:
        # Every point holds at epoch 6: the plot has six curves of six steps, no row is done.
        live = page.locator(".jp-OutputArea-output .widget-html")
        _wait_for(
            page,
            "() => !!document.querySelector('.jp-OutputArea-output .widget-html img[alt=curves]')",
            "the live view plotting the curves of running points",
            RUN_S,
            log,
        )
        assert "0 of 6 done" in live.inner_text()
        live.screenshot(path=str(shots / "live_sweep_running.png"))

        (root / "release").touch()
        _wait_for(
            page,
            """() => [...document.querySelectorAll('.jp-OutputArea-output b')]
                    .some(b => b.textContent.startsWith('train: 5 ok, 1 error'))""",
            "the static summary replacing the live view",
            RUN_S,
            log,
        )
        assert live.inner_text().strip() == ""
        summary = page.locator(".jp-OutputArea-output", has=page.locator("b", has_text="train: 5 ok"))
        assert summary.locator("tbody tr").count() == 6
        assert "loss diverged at epoch 8" in summary.inner_text()
        _wait_for(
            page,
            "() => document.querySelectorAll('.jp-OutputArea-output img').length === 1",
            "the final plot, as an image, after the summary",
            STEP_S,
            log,
        )
        page.locator(".jp-Cell-outputArea").first.screenshot(path=str(shots / "live_sweep_done.png"))


# Two recorded sweeps with one output in common, over axes they partly share: rbf's gamma is
# averaged over, which the view says.
_RUN_HISTORY = """\
import nbflow

def rbf(C, gamma):
    return {"acc": round(1 - 1 / (1 + C * gamma), 3)}

def linear(C):
    return {"acc": round(1 - 1 / (2 + C), 3)}

_ = nbflow.sweep(rbf, {"C": [0.1, 1, 10], "gamma": [0.1, 1]}, progress=False, store="runs", name="rbf")
_ = nbflow.sweep(linear, {"C": [0.1, 1, 10]}, progress=False, store="runs", name="linear")
"""


def test_browser_runs_view_compares_two_clicked_runs(lab):
    """In JupyterLab, clicking two runs in RunsView, picking the metric and pressing Compare shows the compare table and its plot."""
    import nbformat

    _, log = lab
    root = log.parent / "root"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(_RUN_HISTORY),
        nbformat.v4.new_code_cell('view = nbflow.RunsView(store="runs")\nview'),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "run_history.ipynb")
    shots = _screenshots(log)
    # Wide enough that the table of runs fits whole in the screenshot (narrower, it scrolls).
    with _running(lab, "run_history.ipynb", height=1400, width=1600) as page:
        _wait_for(
            page,
            "() => document.querySelectorAll('.nbflow-runs-view select[multiple] option').length === 2",
            "RunsView rendering with the two recorded runs listed",
            RUN_S,
            log,
        )
        view = page.locator(".nbflow-runs-view")
        assert "2 runs" in view.inner_text()
        options = view.locator("select[multiple] option")
        # The front end draws every space of a label as a non-breaking one.
        labels = [" ".join(o.replace("\u00a0", " ").split()) for o in options.all_inner_texts()]
        assert [label.split(" · ")[0] for label in labels] == ["rbf", "linear"]
        options.nth(0).click()
        options.nth(1).click(modifiers=["Control"])
        view.locator(".widget-dropdown", has_text="metric").locator("select").select_option("acc")
        view.locator("button", has_text="Compare").click()
        _wait_for(
            page,
            """() => !!document.querySelector('.nbflow-runs-view table.nbflow-compare')
                    && !!document.querySelector('.nbflow-runs-view svg.nbflow-plot')""",
            "the comparison table and its plot rendering after Compare",
            RUN_S,
            log,
        )

        # Focus has moved on to the buttons; the two runs compared are still drawn selected.
        checked = view.locator("select[multiple] option:checked")
        assert checked.count() == 2
        assert checked.first.evaluate("o => getComputedStyle(o).color") == "rgb(255, 255, 255)"
        headers = view.locator("table.nbflow-compare th").all_inner_texts()
        assert [h.strip() for h in headers] == ["C", "acc (rbf)", "acc (linear)", "diff"]
        assert view.locator("table.nbflow-compare tbody tr").count() == 3
        assert "averaged over" in view.locator(".nbflow-runs-message").inner_text()
        plot = view.locator("svg.nbflow-plot")
        box = plot.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
        # The legend names both runs: the plot draws the comparison, not an empty frame.
        assert {"run=rbf", "run=linear"} <= {t.strip() for t in plot.locator("text").all_text_contents()}
        text = page.evaluate("() => document.body.innerText")
        assert "Loading widget" not in text and "Error displaying widget" not in text
        assert "Traceback" not in text
        view.screenshot(path=str(shots / "runs_view_compare.png"))
