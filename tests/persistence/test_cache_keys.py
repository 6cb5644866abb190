"""What a cache key covers: code wherever it lives, the globals it reads, afresh on every run.

Each test edits something a result depends on between two cached runs, the way a user edits a
notebook or a module next to it, and checks that the second run computes again rather than
returning the old values as ``cached``.
"""

import importlib
import os
import sys
import textwrap
import time

import pytest

import nbflow
from nbflow import ResultCache, Sweep, sweep
from nbflow.fingerprint import code_fingerprint


def _statuses(df):
    return df["status"].tolist()


def _write_module(folder, name, source):
    """Write ``name``.py and make sure an import or reload sees this version, not a stale .pyc."""
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    # A rewrite within the same second and of the same size would let a cached .pyc win.
    later = time.time() + 10 * (1 + len(list(folder.glob("*.py"))))
    os.utime(path, (later, later))
    importlib.invalidate_caches()
    return path


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """A folder on sys.path for modules a user edits next to the notebook; forgotten afterwards."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    yield folder
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(folder)):
            del sys.modules[name]


def test_cache_key_sees_an_edited_and_reloaded_module_target(tmp_path, user_modules):
    """A target defined in an imported .py file is keyed by its code: edit and reload, and it computes again."""
    _write_module(user_modules, "model_a", "def train(x):\n    return {'y': x * 2}\n")
    import model_a

    cache = ResultCache(tmp_path / "cache")
    first = sweep(model_a.train, {"x": [1, 2]}, cache=cache, progress=False)
    assert first["y"].tolist() == [2, 4]

    _write_module(user_modules, "model_a", "def train(x):\n    return {'y': x * 1000}\n")
    importlib.reload(model_a)
    second = sweep(model_a.train, {"x": [1, 2]}, cache=cache, progress=False)
    assert second["y"].tolist() == [1000, 2000]
    assert _statuses(second) == ["ok", "ok"]


def test_cache_key_sees_an_edited_helper_in_a_user_module(tmp_path, user_modules):
    """A notebook target calling helpers.scale(x) computes again once helpers.py is edited and reloaded."""
    _write_module(user_modules, "helpers_b", "def scale(x):\n    return x * 2\n")
    import helpers_b

    namespace = {"__name__": "__main__", "helpers_b": helpers_b}
    exec("def target(x):\n    return {'y': helpers_b.scale(x)}\n", namespace)
    cache = ResultCache(tmp_path / "cache")
    assert sweep(namespace["target"], {"x": [1, 2]}, cache=cache, progress=False)["y"].tolist() == [2, 4]

    _write_module(user_modules, "helpers_b", "def scale(x):\n    return x * 1000\n")
    importlib.reload(helpers_b)
    again = sweep(namespace["target"], {"x": [1, 2]}, cache=cache, progress=False)
    assert again["y"].tolist() == [1000, 2000] and _statuses(again) == ["ok", "ok"]


def test_cache_key_sees_a_helper_imported_by_name_from_a_user_module(tmp_path, user_modules):
    """`from helpers import scale` in the notebook: an edited and re-imported scale computes again."""
    _write_module(user_modules, "helpers_c", "FACTOR = 2\n\ndef scale(x):\n    return x * FACTOR\n")
    import helpers_c

    namespace = {"__name__": "__main__", "scale": helpers_c.scale}
    exec("def target(x):\n    return scale(x)\n", namespace)
    cache = ResultCache(tmp_path / "cache")
    assert sweep(namespace["target"], {"x": [3]}, cache=cache, progress=False)["result"].tolist() == [6]

    # Only a constant of the module changes, not the function's own code.
    _write_module(user_modules, "helpers_c", "FACTOR = 7\n\ndef scale(x):\n    return x * FACTOR\n")
    namespace["scale"] = importlib.reload(helpers_c).scale
    again = sweep(namespace["target"], {"x": [3]}, cache=cache, progress=False)
    assert again["result"].tolist() == [21] and _statuses(again) == ["ok"]


def test_cache_key_unchanged_module_code_still_hits(tmp_path, user_modules):
    """Reloading a module whose code did not change keeps every entry (no needless recomputation)."""
    _write_module(user_modules, "model_d", "def train(x):\n    return x + 1\n")
    import model_d

    cache = ResultCache(tmp_path / "cache")
    sweep(model_d.train, {"x": [1, 2]}, cache=cache, progress=False)
    _write_module(user_modules, "model_d", "# a comment only\ndef train(x):\n    return x + 1\n")
    importlib.reload(model_d)
    assert _statuses(sweep(model_d.train, {"x": [1, 2]}, cache=cache, progress=False)) == ["cached"] * 2


def test_cache_key_is_computed_afresh_when_a_sweep_object_runs_again(tmp_path):
    """Running one Sweep object again after a global it reads changed computes again."""
    namespace = {"__name__": "__main__", "FACTOR": 2}
    exec("def target(x):\n    return x * FACTOR\n", namespace)
    s = Sweep(namespace["target"], {"x": [1, 2]}, cache=tmp_path / "cache", progress=False)
    assert s.run()["result"].tolist() == [2, 4]
    namespace["FACTOR"] = 1000
    again = s.run()
    assert again["result"].tolist() == [1000, 2000] and _statuses(again) == ["ok", "ok"]


def test_cache_key_is_computed_afresh_for_one_result_cache_over_many_runs(tmp_path):
    """One ResultCache shared by runs notices a global changed between them."""
    namespace = {"__name__": "__main__", "OFFSET": 1}
    exec("def target(x):\n    return x + OFFSET\n", namespace)
    cache = ResultCache(tmp_path / "cache")
    target = namespace["target"]
    assert sweep(target, {"x": [1]}, cache=cache, progress=False)["result"].tolist() == [2]
    namespace["OFFSET"] = 100
    assert sweep(target, {"x": [1]}, cache=cache, progress=False)["result"].tolist() == [101]
    namespace["OFFSET"] = 1
    back = sweep(target, {"x": [1]}, cache=cache, progress=False)
    assert back["result"].tolist() == [2] and _statuses(back) == ["cached"]


def test_cache_key_provenance_code_hash_follows_the_code_that_ran(tmp_path):
    """The code hash recorded in the provenance is the one computed for this run, not a stale one."""
    namespace = {"__name__": "__main__", "FACTOR": 2}
    exec("def target(x):\n    return x * FACTOR\n", namespace)
    s = Sweep(namespace["target"], {"x": [1]}, cache=tmp_path / "cache", progress=False)
    first = s.run().attrs["nbflow"]["code_hash"]
    namespace["FACTOR"] = 3
    assert s.run().attrs["nbflow"]["code_hash"] != first


def test_cache_key_depends_on_adds_what_the_key_cannot_see(tmp_path, monkeypatch):
    """depends_on= joins a value (or a callable's value, read at every run) to every key: here os.environ."""
    monkeypatch.setenv("DATA_VERSION", "1")
    namespace = {"__name__": "__main__", "os": os}
    exec("def target(x):\n    return x * int(os.environ['DATA_VERSION'])\n", namespace)
    cache = ResultCache(tmp_path / "cache", depends_on=lambda: os.environ["DATA_VERSION"])
    assert sweep(namespace["target"], {"x": [5]}, cache=cache, progress=False)["result"].tolist() == [5]
    monkeypatch.setenv("DATA_VERSION", "3")
    again = sweep(namespace["target"], {"x": [5]}, cache=cache, progress=False)
    assert again["result"].tolist() == [15] and _statuses(again) == ["ok"]


def test_cache_key_depends_on_that_raises_names_the_fix(tmp_path):
    """A depends_on callable that fails stops the run before any point, naming depends_on."""

    def broken():
        raise KeyError("DATA_VERSION")

    cache = ResultCache(tmp_path / "cache", depends_on=broken)
    with pytest.raises(nbflow.NbflowError, match="depends_on"):
        sweep(lambda x: x, {"x": [1]}, cache=cache, progress=False)


def test_code_fingerprint_library_code_counts_by_name_and_version():
    """A function from an installed package (json here) is keyed by name and version, not by its code."""
    import json

    assert code_fingerprint(json.dumps) == code_fingerprint(json.dumps)
    namespace = {"__name__": "__main__", "json": json}
    exec("def f(x):\n    return json.dumps(x)\n", namespace)
    # Hashing f does not walk into json's code (which would be slow and pointless): it is stable.
    assert code_fingerprint(namespace["f"]) == code_fingerprint(namespace["f"])


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes"])
def test_cache_key_edited_notebook_global_recomputes_on_every_executor(
    tmp_path, executor, shutdown_processes
):
    """Whatever runs the points, a changed global the target reads means a miss."""
    namespace = {"__name__": "__main__", "SCALE": 2}
    exec("def target(x):\n    return x * SCALE\n", namespace)
    cache = ResultCache(tmp_path / "cache")
    first = sweep(namespace["target"], {"x": [1, 2]}, cache=cache, executor=executor, progress=False)
    assert first["result"].tolist() == [2, 4]
    namespace["SCALE"] = 1000
    again = sweep(namespace["target"], {"x": [1, 2]}, cache=cache, executor=executor, progress=False)
    assert again["result"].tolist() == [1000, 2000] and _statuses(again) == ["ok", "ok"]


RESTART = """
import sys
sys.path.insert(0, sys.argv[2])
import helpers_r
from nbflow import sweep

def target(x):
    return helpers_r.scale(x)

df = sweep(target, {"x": [1, 2, 3]}, cache=sys.argv[1], progress=False)
print(df["status"].tolist(), df["result"].tolist())
"""


def test_cache_key_for_user_module_code_is_stable_across_a_restart(tmp_path):
    """A fresh interpreter (a kernel restart) hits the entries of an unchanged helper module, and misses an edited one."""
    import subprocess

    project = tmp_path / "project"
    project.mkdir()
    (project / "helpers_r.py").write_text("def scale(x):\n    return x * 2\n")
    script = tmp_path / "run.py"
    script.write_text(RESTART)

    def run():
        done = subprocess.run(
            [sys.executable, "-B", str(script), str(tmp_path / "cache"), str(project)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run() == "['ok', 'ok', 'ok'] [2, 4, 6]"
    assert run() == "['cached', 'cached', 'cached'] [2, 4, 6]"
    (project / "helpers_r.py").write_text("def scale(x):\n    return x * 5\n")
    assert run() == "['ok', 'ok', 'ok'] [5, 10, 15]"


def _redefine(namespace, source):
    exec(textwrap.dedent(source), namespace)


@pytest.mark.parametrize(
    ("setup", "target"),
    [
        # A library container holding a user function (pickle would only name it).
        ("import types\nCFG = types.SimpleNamespace(act=act)", "def target(x):\n    return CFG.act(x)"),
        # np.vectorize of a user function.
        ("import numpy as np\nV = np.vectorize(act)", "def target(x):\n    return int(V(x))"),
        # A helper reached by a string name.
        (
            "import types\nH = types.ModuleType('h')\nH.scale = act",
            "def target(x):\n    return getattr(H, 'scale')(x)",
        ),
    ],
    ids=["namespace", "vectorize", "getattr"],
)
def test_cache_key_sees_user_functions_held_by_library_objects(tmp_path, setup, target):
    """A user function inside a SimpleNamespace, an np.vectorize or reached through getattr: editing it recomputes."""
    namespace = {"__name__": "__main__"}
    cache = ResultCache(tmp_path / "cache")
    _redefine(namespace, f"def act(v):\n    return v * 2\n{setup}\n{target}")
    assert sweep(namespace["target"], {"x": [1, 2]}, cache=cache, progress=False)["result"].tolist() == [2, 4]
    _redefine(namespace, f"def act(v):\n    return v * 3\n{setup}\n{target}")
    again = sweep(namespace["target"], {"x": [1, 2]}, cache=cache, progress=False)
    assert again["result"].tolist() == [3, 6] and _statuses(again) == ["ok", "ok"]


@pytest.fixture
def worker_modules(user_modules, monkeypatch):
    """user_modules, importable in worker processes too (fresh workers see the folder on their path)."""
    from nbflow import MultiProcessExecutor

    MultiProcessExecutor().shutdown()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(user_modules), os.environ.get("PYTHONPATH", "")]))
    yield user_modules
    MultiProcessExecutor().shutdown()


def test_cache_key_processes_run_the_reloaded_module_not_the_workers_old_copy(tmp_path, worker_modules):
    """Edit and reload a module on processes: warm workers run the new code, and the cache holds new values."""
    _write_module(worker_modules, "model_p", "def train(x):\n    return {'y': x * 2}\n")
    import model_p

    cache = ResultCache(tmp_path / "cache")
    assert sweep(model_p.train, {"x": [1, 2]}, cache=cache, executor="processes", progress=False)[
        "y"
    ].tolist() == [2, 4]
    _write_module(worker_modules, "model_p", "def train(x):\n    return {'y': x * 10}\n")
    importlib.reload(model_p)
    again = sweep(model_p.train, {"x": [1, 2]}, cache=cache, executor="processes", progress=False)
    assert again["y"].tolist() == [10, 20] and _statuses(again) == ["ok", "ok"]
    later = sweep(model_p.train, {"x": [1, 2]}, cache=cache, executor="sequential", progress=False)
    assert later["y"].tolist() == [10, 20] and _statuses(later) == ["cached", "cached"]


def test_cache_key_module_edited_without_reload_is_refused_on_processes(tmp_path, worker_modules):
    """A module edited on disk but not reloaded: processes would import the new file, so the run refuses, naming it."""
    _write_module(worker_modules, "model_q", "def train(x):\n    return x * 2\n")
    import model_q

    sweep(model_q.train, {"x": [1]}, executor="processes", progress=False)
    _write_module(worker_modules, "model_q", "def train(x):\n    return x * 99\n")
    with pytest.raises(nbflow.StaleCodeError, match=r"'model_q'.*importlib\.reload\(model_q\)"):
        sweep(model_q.train, {"x": [1]}, executor="processes", progress=False)
    importlib.reload(model_q)
    assert sweep(model_q.train, {"x": [1]}, executor="processes", progress=False)["result"].tolist() == [99]
