"""Run history: every sweep is recorded, survives the kernel, loads back exactly, and is listed,
filtered and deleted; recording never costs results, on any executor.

Every store here is a real folder (tmp_path) with real Parquet files and a real SQLite index.
"""

import _thread
import datetime as dt
import functools
import os
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

import nbflow
from nbflow import Sweep, grid
from nbflow.errors import ResultsError, RunNotFoundError, RunStoreError
from nbflow.sweeps.run_store import RunStore


def fit(lr, depth):
    for step in range(3):
        nbflow.report(loss=lr * depth / (step + 1))
    print(f"fit lr={lr}")
    if depth == 3:
        raise ValueError(f"depth {depth} diverged")
    return {"loss": lr * depth, "acc": 1 - lr}


def quick(x):
    return {"y": x * 10}


def assert_same_run(loaded, df):
    """Values, dtypes, column order, provenance, curves and logs: all as the sweep returned them."""
    pd.testing.assert_frame_equal(loaded, df, check_exact=True)
    assert list(loaded.dtypes.astype(str)) == list(df.dtypes.astype(str))
    mine, theirs = loaded.attrs["nbflow"], df.attrs["nbflow"]
    assert mine.keys() == theirs.keys()
    assert dict(mine["curves"].items()) == dict(theirs["curves"].items())
    assert dict(mine["logs"].items()) == dict(theirs["logs"].items())
    plain = {k for k in mine if k not in ("curves", "logs")}
    assert {k: mine[k] for k in plain} == {k: theirs[k] for k in plain}


@pytest.mark.parametrize(
    "executor_named",
    ["sequential", "threads", "processes", "async"]
    + [pytest.param(c, marks=pytest.mark.cluster) for c in ("dask", "ray")],
    indirect=True,
)
def test_a_sweep_is_recorded_and_loads_back_exactly(executor_named, tmp_path):
    executor = executor_named
    """Each executor's frame, failures, curves and logs included, comes back from the store unchanged."""
    df = nbflow.sweep(
        fit, grid(lr=[0.1, 0.2], depth=[1, 3]), executor=executor, progress=False, store=tmp_path
    )
    run_id = df.attrs["nbflow"]["run_id"]
    assert set(df["status"]) == {"ok", "error"}
    loaded = nbflow.load_run(run_id, store=tmp_path)
    assert_same_run(loaded, df)
    assert loaded.nbflow.log(1).splitlines()[-1] == "ValueError: depth 3 diverged"
    pd.testing.assert_frame_equal(loaded.nbflow.curves(), df.nbflow.curves())
    listed = nbflow.runs(tmp_path)
    assert listed["run_id"].tolist() == [run_id]
    row = listed.iloc[0]
    assert (row["name"], row["kind"], row["status"], row["executor"]) == (
        "fit",
        "sweep",
        "complete",
        executor,
    )
    assert (row["points"], row["ok"], row["error"]) == (4, 2, 2)


def test_a_recorded_run_survives_a_fresh_interpreter(tmp_path):
    """One process sweeps and exits; another lists and loads the run, equal to what the first saw."""
    script = textwrap.dedent(
        """
        import pickle, sys
        import nbflow

        def loss(lr, seed):
            nbflow.report(loss=lr + seed)
            return {"loss": lr * 2 + seed, "tag": f"lr={lr}"}

        df = nbflow.sweep(loss, {"lr": [0.1, 0.5], "seed": [0, 1]}, progress=False, name="first")
        pickle.dump(df, open(sys.argv[1], "wb"))
        """
    )
    env = {**os.environ, "NBFLOW_HOME": str(tmp_path / "home")}
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "df.pkl")], check=True, env=env, cwd=tmp_path
    )
    check = textwrap.dedent(
        """
        import pickle, sys
        import pandas as pd
        import nbflow

        listed = nbflow.runs()
        assert listed["name"].tolist() == ["first"], listed
        loaded = nbflow.load_run(listed["run_id"][0])
        original = pickle.load(open(sys.argv[1], "rb"))
        pd.testing.assert_frame_equal(loaded, original, check_exact=True)
        assert loaded.attrs["nbflow"]["run_id"] == original.attrs["nbflow"]["run_id"]
        pd.testing.assert_frame_equal(loaded.nbflow.curves(), original.nbflow.curves())
        print("same")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", check, str(tmp_path / "df.pkl")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "same", done.stderr
    assert (tmp_path / "home" / "runs" / "index.sqlite").exists()


def every_dtype(i):
    """One output per dtype the frame builder makes, with gaps where a nullable one needs them."""
    return {
        "int": i,
        "nullable_int": i if i else None,
        "float": i / 3,
        "float_gaps": None if i == 1 else i * 0.5,
        "flag": i % 2 == 0,
        "nullable_flag": None if i == 2 else bool(i),
        "text": f"τ-{i}",
        "text_gaps": None if i == 0 else f"t{i}",
        "when": dt.datetime(2026, 1, 1 + i, tzinfo=dt.timezone.utc),
        "naive_when": pd.Timestamp(2026, 1, 1 + i),
        "took": dt.timedelta(seconds=i),
        "pair": (i, "a"),
        "vector": np.arange(i + 1, dtype=np.float32),
        "nested": {"k": [i, None, float("nan")]},
        "mixed": i if i % 2 else "odd",
    }


def test_every_dtype_the_frame_builder_makes_round_trips(tmp_path):
    df = nbflow.sweep(every_dtype, {"i": [0, 1, 2, 3]}, progress=False, store=tmp_path)
    loaded = nbflow.load_run(df.attrs["nbflow"]["run_id"], store=tmp_path)
    assert dict(loaded.dtypes.astype(str)) == dict(df.dtypes.astype(str))
    for column in df.columns:
        for mine, theirs in zip(loaded[column], df[column], strict=True):
            if isinstance(theirs, np.ndarray):
                assert isinstance(mine, np.ndarray) and mine.dtype == theirs.dtype
                np.testing.assert_array_equal(mine, theirs)
            elif column == "nested":
                assert mine["k"][:2] == theirs["k"][:2] and np.isnan(mine["k"][2])
            else:
                assert (pd.isna(mine) and pd.isna(theirs)) or (
                    mine == theirs and type(mine) is type(theirs)
                ), (
                    column,
                    mine,
                    theirs,
                )


def test_axes_of_odd_types_round_trip(tmp_path):
    """Axis values that are tuples, None, categoricals-to-be and odd names come back as they were."""
    df = nbflow.sweep(
        lambda shape, **kw: {"n": len(shape or ())},
        grid(shape=[(1, 2), None, (3,)], **{"weird name/é": ["a", "b"]}),
        progress=False,
        store=tmp_path,
    )
    loaded = nbflow.load_run(df.attrs["nbflow"]["run_id"], store=tmp_path)
    pd.testing.assert_frame_equal(loaded, df)


def slow_from(x, k, seconds):
    """Points below k return at once; the others take ``seconds`` (a worker process is stopped first)."""
    if x >= k:
        time.sleep(seconds)
    return {"y": x * 10}


class CtrlCAfter:
    """A progress stand-in that presses Ctrl-C once four points have finished."""

    def __init__(self, total, desc, unit):
        self.n = 0

    def update(self, n):
        self.n += n
        if self.n == 4:
            _thread.interrupt_main()

    def set_postfix(self, *a, **k):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes", "async"])
def test_an_interrupted_sweep_is_recorded_with_its_partial_rows(executor, tmp_path, shutdown_processes):
    """Ctrl-C after four points: the store has the run, marked interrupted, with exactly the finished rows."""
    seconds = 60 if executor == "processes" else 0.3
    target = functools.partial(slow_from, k=4, seconds=seconds)
    s = Sweep(target, grid(x=range(10)), executor=executor, progress=CtrlCAfter, store=tmp_path, name="slow")
    with pytest.raises(KeyboardInterrupt) as info:
        s.run()
    partial = info.value.results
    listed = nbflow.runs(tmp_path)
    assert listed["status"].tolist() == ["interrupted"]
    loaded = nbflow.load_run(listed["run_id"][0], store=tmp_path)
    pd.testing.assert_frame_equal(loaded, partial)
    ok = loaded[loaded["status"] == "ok"]
    assert len(ok) >= 4 and (ok["y"] == ok["x"] * 10).all()
    assert listed["ok"][0] == len(ok) and listed["cancelled"][0] == 10 - len(ok)


def test_a_cancelled_sweep_is_recorded_as_cancelled(tmp_path):
    def point(x):
        if x == 2:
            s.cancel()
        return x

    s = Sweep(point, grid(x=range(50)), executor="sequential", progress=False, store=tmp_path)
    df = s.run()
    listed = nbflow.runs(tmp_path)
    assert listed["status"].tolist() == ["cancelled"]
    assert (listed["ok"][0], listed["cancelled"][0]) == (3, 47)
    pd.testing.assert_frame_equal(nbflow.load_run(df.attrs["nbflow"]["run_id"], store=tmp_path), df)


def test_a_sweep_stopped_by_a_failing_point_is_recorded_as_failed(tmp_path):
    with pytest.raises(nbflow.TaskFailed):
        nbflow.sweep(
            lambda x: 1 / x,
            {"x": [1, 0, 2]},
            executor="sequential",
            on_error="raise",
            progress=False,
            store=tmp_path,
        )
    listed = nbflow.runs(tmp_path)
    assert listed["status"].tolist() == ["failed"] and listed["error"][0] == 1


RECORD_MANY = textwrap.dedent(
    """
    import sys
    import nbflow
    store, tag = sys.argv[1], sys.argv[2]
    for i in range(15):
        nbflow.sweep(lambda x: {"y": x}, {"x": list(range(20))}, progress=False, name=f"{tag}-{i}", store=store)
    """
)


def test_two_processes_recording_at_once_lose_nothing(tmp_path):
    store = tmp_path / "store"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RECORD_MANY, str(store), tag], stderr=subprocess.PIPE, text=True
        )
        for tag in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "could not record" not in err
    listed = nbflow.runs(store)
    assert sorted(listed["name"]) == sorted(f"{t}-{i}" for t in "ab" for i in range(15))
    assert listed["run_id"].is_unique
    for run_id in listed["run_id"]:
        assert nbflow.load_run(run_id, store=store)["y"].tolist() == list(range(20))


def test_record_false_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NBFLOW_HOME")
    df = nbflow.sweep(quick, {"x": [1]}, progress=False, record=False)
    assert "run_id" not in df.attrs["nbflow"]
    with nbflow.config(record=False):
        nbflow.sweep(quick, {"x": [1]}, progress=False)
    assert list(tmp_path.iterdir()) == []
    # The default, with NBFLOW_HOME unset: .nbflow/runs under the current directory.
    nbflow.sweep(quick, {"x": [1]}, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [".nbflow"]
    assert len(nbflow.runs()) == 1


def test_record_true_on_the_sweep_wins_over_the_config(tmp_path):
    with nbflow.config(record=False, store=tmp_path):
        nbflow.sweep(quick, {"x": [1]}, progress=False, record=True)
        nbflow.sweep(quick, {"x": [1]}, progress=False)
        assert len(nbflow.runs()) == 1
    assert nbflow.config.current() == {"record": True, "store": None}


def test_the_store_is_owner_only(tmp_path):
    store = tmp_path / "runs"
    nbflow.sweep(quick, {"x": [1]}, progress=False, store=store)
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    for path in store.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_half_written_run_is_never_listed(tmp_path, monkeypatch):
    """A run whose index row never got written (the kernel died after the frame) is not listed."""
    nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path, name="whole")

    def die(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(RunStore, "_execute", die)
    with pytest.raises(KeyboardInterrupt):
        nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path, name="half", executor="sequential")
    monkeypatch.undo()
    assert nbflow.runs(tmp_path)["name"].tolist() == ["whole"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_damaged_run_file_fails_alone_with_a_clear_error(tmp_path):
    first = nbflow.sweep(quick, {"x": [1, 2]}, progress=False, store=tmp_path, name="one")
    second = nbflow.sweep(quick, {"x": [3]}, progress=False, store=tmp_path, name="two")
    damaged = first.attrs["nbflow"]["run_id"]
    (tmp_path / f"{damaged}.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(RunStoreError, match=rf"Cannot read run '{damaged}'.*damaged.*delete_run"):
        nbflow.load_run(damaged, store=tmp_path)
    assert nbflow.runs(tmp_path)["name"].tolist() == ["one", "two"]
    assert nbflow.load_run(second.attrs["nbflow"]["run_id"], store=tmp_path)["y"].tolist() == [30]
    nbflow.delete_run(damaged, store=tmp_path)
    assert nbflow.runs(tmp_path)["name"].tolist() == ["two"]


def test_a_damaged_index_is_a_clear_error_and_a_sweep_still_returns_its_frame(tmp_path):
    nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path)
    (tmp_path / "index.sqlite").write_bytes(b"garbage" * 1000)
    for leftover in tmp_path.glob("index.sqlite-*"):
        leftover.unlink()
    with pytest.raises(RunStoreError, match=r"index.sqlite.*move it aside.*one \.parquet file per run"):
        nbflow.runs(tmp_path)
    with pytest.warns(UserWarning, match=r"could not record sweep 'quick'.*results are intact"):
        df = nbflow.sweep(quick, {"x": [1, 2]}, progress=False, store=tmp_path)
    assert df["y"].tolist() == [10, 20] and "run_id" not in df.attrs["nbflow"]


def test_a_store_that_cannot_be_made_warns_and_keeps_the_results(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match=r"Cannot create the run store.*record=False"):
        df = nbflow.sweep(quick, {"x": [1]}, progress=False, store=blocker / "runs")
    assert df["y"].tolist() == [10]


def test_names_with_wildcard_characters_match_themselves(tmp_path):
    nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path, name="model[1] *é*")
    nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path, name="model1")
    assert nbflow.runs(tmp_path, name="model[1] *é*")["name"].tolist() == ["model[1] *é*"]


def test_a_run_whose_file_was_removed_says_so_and_can_be_deleted(tmp_path):
    df = nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path)
    run_id = df.attrs["nbflow"]["run_id"]
    (tmp_path / f"{run_id}.parquet").unlink()
    with pytest.raises(RunStoreError, match=rf"Run '{run_id}' is listed.*its file .* is gone.*delete_run"):
        nbflow.load_run(run_id, store=tmp_path)
    nbflow.delete_run(run_id, store=tmp_path)
    assert nbflow.runs(tmp_path).empty


def test_runs_filters_by_name_target_status_and_date(tmp_path):
    nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path, name="svm-rbf")
    nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path, name="svm-linear")
    nbflow.sweep(fit, {"lr": [0.1], "depth": [1]}, progress=False, store=tmp_path, name="tree")

    def names(**filters):
        return nbflow.runs(tmp_path, **filters)["name"].tolist()

    assert names(name="svm-*") == ["svm-rbf", "svm-linear"]
    assert names(name=["tree", "svm-rbf"]) == ["svm-rbf", "tree"]
    assert names(target="fit") == ["tree"]
    assert names(status="complete") == ["svm-rbf", "svm-linear", "tree"]
    assert names(status=["interrupted", "cancelled"]) == []
    now = pd.Timestamp.now(tz="UTC")
    assert len(names(since=now - pd.Timedelta(minutes=5))) == 3
    assert names(until=now - pd.Timedelta(minutes=5)) == []
    assert len(names(since=dt.date.today().isoformat())) == 3
    with pytest.raises(ValueError, match=r"'ok'.*a point's status.*Choose from"):
        names(status="ok")
    with pytest.raises(ValueError, match=r"since='yesterday-ish'.*not a date"):
        names(since="yesterday-ish")
    with pytest.raises(TypeError, match=r"name=.*a string"):
        names(name=3)


def test_runs_lists_the_best_of_each_output_as_asked(tmp_path):
    nbflow.sweep(fit, grid(lr=[0.1, 0.5], depth=[1, 2, 3]), progress=False, store=tmp_path)
    both = nbflow.runs(tmp_path).iloc[0]
    assert (both["min_loss"], both["max_loss"]) == (0.1, 1.0)
    assert (both["min_acc"], both["max_acc"]) == (0.5, 0.9)
    ranked = nbflow.runs(tmp_path, best={"loss": "min"}).iloc[0]
    assert ranked["best_loss"] == 0.1 and "min_loss" not in ranked and ranked["max_acc"] == 0.9
    assert nbflow.runs(tmp_path, best="max").iloc[0]["best_acc"] == 0.9
    with pytest.raises(ValueError, match=r"best=.*'min' or 'max'"):
        nbflow.runs(tmp_path, best="lowest")


def test_runs_of_an_empty_or_missing_store_is_an_empty_frame(tmp_path):
    listed = nbflow.runs(tmp_path / "nothing here")
    assert listed.empty and "run_id" in listed.columns and "git_commit" in listed.columns
    assert not (tmp_path / "nothing here").exists()


def test_runs_records_the_git_commit_and_whether_the_tree_was_dirty(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "f.txt").write_text("1")
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=repo, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(repo)
    nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path / "store")
    (repo / "f.txt").write_text("2")
    nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path / "store")
    listed = nbflow.runs(tmp_path / "store")
    assert listed["git_commit"].tolist() == [commit, commit]
    assert listed["git_dirty"].tolist() == [False, True]


def test_load_run_of_an_unknown_id_names_the_latest(tmp_path):
    df = nbflow.sweep(quick, {"x": [1]}, progress=False, store=tmp_path)
    with pytest.raises(
        RunNotFoundError, match=r"No run 'nope'.*The latest: \['" + df.attrs["nbflow"]["run_id"]
    ):
        nbflow.load_run("nope", store=tmp_path)
    with pytest.raises(TypeError, match=r"A run id is a string"):
        nbflow.load_run(42, store=tmp_path)
    assert nbflow.load_run(df, store=tmp_path).equals(df)  # the recorded frame stands for its id


def test_deleting_runs_keeps_the_result_cache(tmp_path):
    cache, store = tmp_path / "cache", tmp_path / "store"
    nbflow.sweep(quick, {"x": [1, 2]}, progress=False, cache=cache, store=store, name="a")
    nbflow.sweep(quick, {"x": [3]}, progress=False, store=store, name="b")
    nbflow.sweep(quick, {"x": [4]}, progress=False, store=store, name="c")
    deleted = nbflow.runs(store, name=["a", "b"]).pipe(nbflow.delete_runs)
    assert len(deleted) == 2
    assert nbflow.runs(store)["name"].tolist() == ["c"]
    assert sorted(p.name for p in store.glob("*.parquet")) == [f"{nbflow.runs(store)['run_id'][0]}.parquet"]
    again = nbflow.sweep(quick, {"x": [1, 2]}, progress=False, cache=cache, store=store)
    assert again["status"].tolist() == ["cached", "cached"]
    with pytest.raises(RunNotFoundError):
        nbflow.delete_run(deleted[0], store=store)
    with pytest.raises(ResultsError, match=r"delete_runs\(\) takes the DataFrame nbflow.runs\(\) returns"):
        nbflow.delete_runs(["a"])


def test_rerun_failed_records_the_mended_frame_as_a_run_of_its_own(tmp_path):
    flaky = {"fail": True}

    def point(x):
        if x == 1 and flaky["fail"]:
            raise RuntimeError("flaky")
        return {"y": x}

    s = Sweep(point, grid(x=[0, 1, 2]), progress=False, store=tmp_path, executor="sequential")
    first = s.run()
    flaky["fail"] = False
    mended = s.rerun_failed()
    listed = nbflow.runs(tmp_path)
    assert listed["error"].tolist() == [1, 0] and listed["ok"].tolist() == [2, 3]
    assert mended.attrs["nbflow"]["reran_from"] == first.attrs["nbflow"]["run_id"]
    assert mended.attrs["nbflow"]["run_id"] == listed["run_id"][1]
    pd.testing.assert_frame_equal(nbflow.load_run(listed["run_id"][1], store=tmp_path), mended)


def test_optimize_is_recorded_with_its_search(tmp_path):
    pytest.importorskip("optuna")
    df = nbflow.optimize(
        lambda x: {"loss": (x - 1) ** 2},
        {"x": nbflow.uniform(-3, 3)},
        metric="loss",
        n_trials=5,
        seed=0,
        progress=False,
        store=tmp_path,
    )
    listed = nbflow.runs(tmp_path, best="min").iloc[0]
    assert listed["kind"] == "optimize" and listed["best_loss"] == df["loss"].min()
    loaded = nbflow.load_run(listed["run_id"], store=tmp_path)
    assert loaded.attrs["nbflow"]["search"] == df.attrs["nbflow"]["search"]


def test_a_sweep_inside_an_application_is_recorded(tmp_path):
    app = (
        nbflow.ApplicationBuilder()
        .with_actions(points=Sweep(quick, grid(x=[1, 2]), progress=False, store=tmp_path))
        .with_entrypoint("points")
        .build()
    )
    _, _, state = app.run()
    assert nbflow.load_run(state["results"].attrs["nbflow"]["run_id"], store=tmp_path).equals(
        state["results"]
    )


def test_a_value_nbflow_cannot_store_is_recorded_as_its_repr_and_said_so_on_load(tmp_path):
    """A point returning a fitted model still makes a run: the model column is its repr, with a warning."""

    class Model:
        def __repr__(self):
            return "Model(depth=3)"

    df = nbflow.sweep(
        lambda x: {"model": Model(), "acc": x / 10}, {"x": [1, 2]}, progress=False, store=tmp_path
    )
    assert isinstance(df["model"][0], Model)
    with pytest.warns(
        UserWarning, match=r"columns 'model' \(Model\) held objects nbflow cannot store.*register_serde"
    ):
        loaded = nbflow.load_run(df, store=tmp_path)
    assert loaded["model"].tolist() == ["Model(depth=3)"] * 2
    pd.testing.assert_frame_equal(loaded.drop(columns="model"), df.drop(columns="model"))
    assert "unstored" not in loaded.attrs["nbflow"]
