"""nbflow.optimize and Sweep(search=...): adaptive search and pruning with Optuna, on nbflow's executors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import nbflow
from nbflow import SweepError, choice, loguniform, optimize, randint, uniform
from nbflow.sweeps.search import Search

pytest.importorskip("optuna")

SPACE = {"x": uniform(-3, 3), "y": uniform(-3, 3), "kind": ["a", "b"]}


def bowl(x, y, kind):
    return {"loss": (x - 1) ** 2 + (y + 0.5) ** 2 + (0.0 if kind == "a" else 0.3)}


def quiet(**options):
    return {"progress": False, "live": False, **options}


# -- samplers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "qmc"])
def test_each_sampler_name_searches_the_space_and_gives_one_row_per_trial(sampler):
    df = optimize(bowl, SPACE, n_trials=16, metric="loss", sampler=sampler, seed=1, **quiet())
    assert len(df) == 16
    assert set(df["status"]) == {"ok"}
    assert df["x"].between(-3, 3).all() and set(df["kind"]) <= {"a", "b"}
    assert df["loss"].tolist() == [bowl(r.x, r.y, r.kind)["loss"] for r in df.itertuples()]
    assert df.attrs["nbflow"]["search"]["sampler"] == sampler


def test_the_grid_sampler_runs_every_listed_point_once():
    space = {"depth": randint(1, 3), "kind": choice(["a", "b"])}
    with pytest.warns(UserWarning, match="the grid has 6 points"):
        df = optimize(
            lambda depth, kind: depth, space, n_trials=50, metric="result", sampler="grid", **quiet()
        )
    assert sorted(zip(df["depth"], df["kind"], strict=True)) == [
        (d, k) for d in (1, 2, 3) for k in ("a", "b")
    ]


def test_an_optuna_sampler_object_is_taken_as_it_is():
    import optuna

    df = optimize(
        bowl, SPACE, n_trials=5, metric="loss", sampler=optuna.samplers.RandomSampler(seed=3), **quiet()
    )
    assert len(df) == 5
    assert df.attrs["nbflow"]["search"]["sampler"] == "RandomSampler"


def test_tpe_finds_the_bottom_of_the_bowl_better_than_its_random_start():
    df = optimize(bowl, SPACE, n_trials=60, metric="loss", seed=0, executor="sequential", **quiet())
    start, rest = df["loss"][:10].min(), df["loss"][10:].min()
    assert rest < start
    assert df["loss"].min() < 0.1


def test_mode_max_maximizes():
    df = optimize(
        lambda x: -((x - 1) ** 2), {"x": uniform(-3, 3)}, n_trials=30, metric="result", mode="max", seed=0,
        executor="sequential", **quiet(),
    )  # fmt: skip
    assert df["result"].max() > -0.05


def test_options_that_are_not_plain_values_come_back_as_themselves():
    """Optuna stores plain values only; tuples and objects are searched by position."""
    sizes = [(8, 8), (16, 16), (32, 32)]
    df = optimize(lambda size: size[0], {"size": sizes}, n_trials=6, metric="result", seed=0, **quiet())
    assert all(size in sizes for size in df["size"])
    assert df["result"].tolist() == [s[0] for s in df["size"]]


# -- reproducible, and ask/tell as workers free up ------------------------------------------------


@pytest.mark.parametrize("executor", ["sequential", "threads", "processes"])
def test_a_seeded_search_with_one_point_in_flight_repeats_exactly(executor, shutdown_processes):
    n_jobs = None if executor == "sequential" else 1
    runs = [
        optimize(bowl, SPACE, n_trials=15, metric="loss", seed=7, executor=executor, n_jobs=n_jobs, **quiet())
        for _ in range(2)
    ]
    columns = ["x", "y", "kind", "loss", "status"]
    assert runs[0][columns].equals(runs[1][columns])
    other = optimize(bowl, SPACE, n_trials=15, metric="loss", seed=8, executor="sequential", **quiet())
    assert not other["x"].equals(runs[0]["x"])


def test_at_most_n_jobs_points_run_at_once_and_each_is_asked_when_one_finishes():
    running, most, lock = [0], [0], threading.Lock()
    told_before = []

    def slow(x):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return {"loss": x * x}

    search = Search({"x": uniform(-1, 1)}, n_trials=12, metric="loss", sampler="random", seed=0)
    original = search.study_key

    df = nbflow.Sweep(slow, search=search, executor="threads", n_jobs=3, **quiet()).run()
    assert original  # the study key is computed per run
    assert len(df) == 12 and set(df["status"]) == {"ok"}
    assert most[0] == 3
    # Every trial asked after the first three was asked once another had been told: the study
    # never held more than three unfinished trials.
    import optuna

    trials = search.study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 12
    for i, trial in enumerate(trials[3:], start=3):
        finished_before = sum(1 for t in trials[:i] if t.datetime_complete <= trial.datetime_start)
        told_before.append(finished_before)
        assert finished_before >= i - 2


def test_failed_points_are_rows_told_as_failed_and_the_search_goes_on():
    import optuna

    def flaky(x):
        if x > 0.5:
            raise ValueError(f"x={x} is too big")
        return {"loss": x}

    search = Search({"x": uniform(0, 1)}, n_trials=20, metric="loss", sampler="random", seed=0)
    df = nbflow.Sweep(flaky, search=search, **quiet()).run()
    assert len(df) == 20
    failed = df[df["status"] == "error"]
    assert len(failed) == (df["x"] > 0.5).sum() > 0
    assert failed["error"].str.contains("too big").all()
    states = [t.state for t in search.study.get_trials(deepcopy=False)]
    assert states.count(optuna.trial.TrialState.FAIL) == len(failed)
    assert states.count(optuna.trial.TrialState.COMPLETE) == 20 - len(failed)


@pytest.mark.parametrize("executor", ["sequential", "threads"])
def test_a_point_asked_again_is_a_cache_hit_told_to_the_study_and_nothing_waits_forever(executor, tmp_path):
    """A small categorical space makes the sampler ask points it asked before: cache hits the
    producer finds must be told at once, or the next ask would wait for a tell that never comes."""
    calls = []

    def f(kind):
        calls.append(kind)
        return {"loss": {"a": 1.0, "b": 2.0}[kind]}

    df = optimize(
        f,
        {"kind": ["a", "b"]},
        n_trials=8,
        metric="loss",
        seed=0,
        executor=executor,
        cache=tmp_path,
        **quiet(),
    )
    assert len(df) == 8
    assert set(df["status"]) <= {"ok", "cached"} and (df["status"] == "cached").any()
    assert sorted(set(calls)) == sorted(set(df["kind"]))
    assert len(calls) == (df["status"] == "ok").sum()


def test_cancel_stops_asking_and_keeps_what_finished():
    started = threading.Event()

    def slow(x):
        started.set()
        time.sleep(0.05)
        return {"loss": x}

    search = Search({"x": uniform(0, 1)}, n_trials=200, metric="loss", sampler="random", seed=0)
    sweep = nbflow.Sweep(slow, search=search, executor="threads", n_jobs=2, **quiet())
    threading.Thread(target=lambda: (started.wait(5), time.sleep(0.2), sweep.cancel()), daemon=True).start()
    df = sweep.run()
    assert 0 < (df["status"] == "ok").sum() < 200
    # Only points that were asked are rows; those in flight at the cancel are "cancelled".
    assert len(df) < 200
    assert set(df["status"]) <= {"ok", "cancelled"}


def test_cancel_returns_promptly_while_a_point_hangs():
    release = threading.Event()
    hung = threading.Event()

    def f(x):
        if x > 0.5 and not hung.is_set():
            hung.set()
            release.wait(30)  # this point hangs; a thread cannot be stopped
        return {"loss": x}

    search = Search({"x": uniform(0, 1)}, n_trials=100, metric="loss", sampler="random", seed=0)
    sweep = nbflow.Sweep(f, search=search, executor="threads", n_jobs=2, **quiet())
    threading.Thread(target=lambda: (hung.wait(10), time.sleep(0.2), sweep.cancel()), daemon=True).start()
    started = time.monotonic()
    df = sweep.run()
    took = time.monotonic() - started
    release.set()
    assert took < 10  # not the 30 s the hung point waits
    assert (df["status"] == "cancelled").sum() >= 1
    assert set(df["status"]) <= {"ok", "cancelled"}


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_ctrl_c_during_a_search_raises_with_the_trials_that_finished(executor, shutdown_processes):
    import signal

    def f(x):
        time.sleep(0.05)
        return {"loss": x}

    search = Search({"x": uniform(0, 1)}, n_trials=200, metric="loss", sampler="random", seed=0)
    sweep = nbflow.Sweep(f, search=search, executor=executor, n_jobs=2, **quiet())
    timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt) as info:
        sweep.run()
    timer.cancel()
    partial = info.value.results
    assert 0 < (partial["status"] == "ok").sum() < 200
    assert set(partial["status"]) <= {"ok", "cancelled"}
    finished = partial.loc[partial["status"] == "ok"]
    assert finished["loss"].tolist() == finished["x"].tolist()  # each result under its own point


def test_a_cancelled_search_resumes_with_its_finished_trials_and_asks_the_rest(tmp_path):
    calls = []
    started = threading.Event()

    def f(x):
        calls.append(x)
        if len(calls) >= 4:
            started.set()
        time.sleep(0.02)
        return {"loss": x}

    space = {"x": uniform(0, 1)}
    search = Search(space, n_trials=30, metric="loss", sampler="random", seed=0)
    sweep = nbflow.Sweep(f, search=search, executor="threads", n_jobs=2, cache=tmp_path, **quiet())
    threading.Thread(target=lambda: (started.wait(5), sweep.cancel()), daemon=True).start()
    first = sweep.run()
    done = first[first["status"] == "ok"]
    assert 0 < len(done) < 30
    again = optimize(
        f, space, n_trials=30, metric="loss", sampler="random", seed=0, cache=tmp_path, **quiet()
    )
    assert len(again) == 30 and set(again["status"]) == {"ok", "cached"}
    # The finished trials came back from the cache, each under its own parameters.
    reloaded = again[again["status"] == "cached"]
    assert sorted(reloaded["x"]) == sorted(done["x"])
    assert (again["loss"] == again["x"]).all()


# -- pruning ------------------------------------------------------------------------------------


def learning_curve(lr):
    """20 epochs; a bad lr is bad from the first epoch."""
    loss = 1.0
    for epoch in range(20):
        loss = abs(lr - 0.3) + 1.0 / (epoch + 1)
        nbflow.report(step=epoch, loss=loss)
    return {"loss": loss}


@pytest.mark.parametrize("executor", ["threads", "processes"])
@pytest.mark.parametrize("prune", ["median", "asha", "hyperband"])
def test_pruned_points_stop_at_a_report_keep_their_curves_and_are_told_pruned(
    executor, prune, shutdown_processes
):
    import optuna

    search = Search({"lr": uniform(0, 1)}, n_trials=24, metric="loss", prune=prune, seed=0)
    df = nbflow.Sweep(learning_curve, search=search, executor=executor, n_jobs=2, **quiet()).run()
    pruned = df[df["status"] == "pruned"]
    assert len(pruned) > 0 and (df["status"] == "ok").any()
    curves = df.nbflow.curves()
    epochs = curves.groupby("task_id").size()
    assert (epochs[pruned["task_id"]] < 20).all()
    assert (epochs[df.loc[df["status"] == "ok", "task_id"]] == 20).all()
    # A pruned row has no loss (the epochs it ran are not a finished point's), and no error.
    assert pruned["loss"].isna().all() and pruned["error"].isna().all()
    assert df.nbflow.best("loss")["status"] == "ok"
    states = [t.state for t in search.study.get_trials(deepcopy=False)]
    assert states.count(optuna.trial.TrialState.PRUNED) == len(pruned)


def test_pruning_keeps_the_best_point_and_saves_epochs():
    full = optimize(
        learning_curve,
        {"lr": uniform(0, 1)},
        n_trials=30,
        metric="loss",
        seed=0,
        executor="sequential",
        **quiet(),
    )
    pruned = optimize(
        learning_curve, {"lr": uniform(0, 1)}, n_trials=30, metric="loss", seed=0, prune="median",
        executor="sequential", **quiet(),
    )  # fmt: skip
    assert pruned["loss"].min() == pytest.approx(full["loss"].min())
    assert len(pruned.nbflow.curves()) < 0.8 * len(full.nbflow.curves())


def test_a_point_may_raise_pruned_itself():
    def f(x):
        nbflow.report(step=0, loss=x)
        if x > 0.5:
            raise nbflow.Pruned(0)
        return {"loss": x}

    df = nbflow.sweep(f, {"x": [0.1, 0.9]}, retries=2, **quiet())
    assert df["status"].tolist() == ["ok", "pruned"]
    assert df["attempts"].tolist() == [1, 1]  # pruned is not a failure to retry


# -- resume ---------------------------------------------------------------------------------------

_RESUME = """
import sys, nbflow
from nbflow import uniform

def f(x, kind):
    with open({calls!r}, "a") as out:
        out.write(f"{{x}}\\n")
    for epoch in range(3):
        nbflow.report(step=epoch, loss=(x - 0.2) ** 2 + 1 / (epoch + 1))
    return {{"loss": (x - 0.2) ** 2}}

df = nbflow.optimize(f, {{"x": uniform(0, 1), "kind": ["a", "b"]}}, n_trials=int(sys.argv[1]), metric="loss",
                     seed=0, cache={cache!r}, progress=False, live=False, executor="threads", n_jobs=2)
print(len(df), (df["status"] == "cached").sum(), (df["status"] == "ok").sum(), df.attrs["nbflow"]["search"]["reloaded"])
"""


def test_resume_in_a_fresh_interpreter_runs_only_the_new_trials(tmp_path):
    calls = tmp_path / "calls.txt"
    script = tmp_path / "search.py"
    script.write_text(_RESUME.format(calls=str(calls), cache=str(tmp_path / "cache")))

    def run(n):
        done = subprocess.run(
            [sys.executable, str(script), str(n)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run(6) == ["6", "0", "6", "0"]
    first = calls.read_text().split()
    assert len(first) == 6
    assert run(10) == ["10", "6", "4", "6"]
    assert calls.read_text().split()[:6] == first
    assert len(calls.read_text().split()) == 10
    # The same n_trials again runs nothing.
    assert run(10) == ["10", "10", "0", "10"]
    assert len(calls.read_text().split()) == 10


def test_resume_of_a_pruned_trial_keeps_it_pruned_with_its_curve(tmp_path):
    first = optimize(learning_curve, {"lr": uniform(0, 1)}, n_trials=16, metric="loss", seed=0, prune="median",
                     executor="sequential", cache=tmp_path, **quiet())  # fmt: skip
    again = optimize(learning_curve, {"lr": uniform(0, 1)}, n_trials=16, metric="loss", seed=0, prune="median",
                     executor="sequential", cache=tmp_path, **quiet())  # fmt: skip
    assert (first["status"] == "pruned").sum() == (again["status"] == "pruned").sum() > 0
    assert set(again["status"]) == {"cached", "pruned"}
    assert len(again.nbflow.curves()) == len(first.nbflow.curves())


def test_edited_code_starts_a_new_study(tmp_path):
    first = optimize(
        lambda x: {"loss": x},
        {"x": uniform(0, 1)},
        n_trials=4,
        metric="loss",
        seed=0,
        cache=tmp_path,
        **quiet(),
    )
    edited = optimize(
        lambda x: {"loss": -x},
        {"x": uniform(0, 1)},
        n_trials=4,
        metric="loss",
        seed=0,
        cache=tmp_path,
        **quiet(),
    )
    assert set(first["status"]) == {"ok"} and set(edited["status"]) == {"ok"}
    assert edited.attrs["nbflow"]["search"]["study"] != first.attrs["nbflow"]["search"]["study"]


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({}, "dict of parameters"),
        ([("x", uniform(0, 1))], "dict of parameters"),
        ({"x": 3}, "'x' is int 3, not a distribution"),
        ({"x": range(3)}, "'x' is range"),
        ({"not a name": uniform(0, 1)}, "not a valid Python name"),
    ],
)
def test_a_bad_space_is_a_clear_error_naming_the_key(space, match):
    with pytest.raises(SweepError, match=match):
        optimize(bowl, space, n_trials=3, metric="loss")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"sampler": "bayes"}, "unknown sampler.*'tpe', 'random', 'cmaes', 'qmc', 'grid'"),
        ({"prune": "early"}, "unknown pruner.*'median', 'asha', 'hyperband'"),
        ({"n_trials": 0}, "at least 1 trial"),
        ({"n_trials": 2.5}, "positive int"),
        ({"mode": "minimize"}, "'min' or 'max'"),
        ({"sampler": "grid"}, "'x' is uniform.*a continuous range"),
    ],
)
def test_bad_settings_are_clear_errors_before_anything_runs(options, match):
    ran = []
    settings = {"n_trials": 3, **options}
    with pytest.raises(SweepError, match=match):
        optimize(lambda x, y, kind: ran.append(1), SPACE, metric="loss", **settings, **quiet())
    assert not ran


def test_a_metric_the_target_never_gives_stops_the_search_and_keeps_what_ran():
    with pytest.raises(SweepError, match=r"metric='acc'.*returned and reported 'loss'.*no 'acc'") as info:
        optimize(bowl, SPACE, n_trials=30, metric="acc", executor="sequential", **quiet())
    assert 1 <= len(info.value.results) < 30
    assert (info.value.results["status"] == "ok").all()


def test_a_metric_that_is_not_a_number_is_a_clear_error():
    with pytest.raises(SweepError, match="gave loss='big', a str"):
        optimize(lambda x: {"loss": "big"}, {"x": uniform(0, 1)}, n_trials=5, metric="loss", **quiet())


def test_prune_without_any_report_is_a_clear_error():
    with pytest.raises(
        SweepError, match=r"prune='median'.*without calling nbflow.report\(step=..., loss=...\)"
    ):
        optimize(bowl, SPACE, n_trials=10, metric="loss", prune="median", executor="sequential", **quiet())


def test_a_grid_and_a_search_together_are_refused():
    search = Search({"x": uniform(0, 1)}, n_trials=2, metric="loss")
    with pytest.raises(SweepError, match="a grid or a search, not both"):
        nbflow.Sweep(bowl, {"x": [1]}, search=search)


def test_without_optuna_the_error_names_the_extra():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["optuna"] = None
        import nbflow
        try:
            nbflow.optimize(lambda x: x, {"x": nbflow.uniform(0, 1)}, n_trials=2, metric="result")
        except nbflow.MissingDependencyError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'nbflow[optuna]'" in out.stdout, out.stderr


# -- provenance, applications ---------------------------------------------------------------------


def test_provenance_records_sampler_pruner_seed_space_and_optuna_version():
    import optuna

    df = optimize(
        learning_curve,
        {"lr": loguniform(1e-3, 1)},
        n_trials=4,
        metric="loss",
        prune="asha",
        seed=5,
        **quiet(),
    )
    search = df.attrs["nbflow"]["search"]
    assert search["sampler"] == "tpe" and search["pruner"] == "asha" and search["seed"] == 5
    assert search["space"] == {"lr": "loguniform(0.001, 1.0)"}
    assert search["optuna_version"] == optuna.__version__
    assert search["metric"] == "loss" and search["mode"] == "min"


def test_a_search_runs_as_a_step_of_an_application():
    search = Search({"x": uniform(-2, 2)}, n_trials=8, metric="loss", seed=0)
    tune = nbflow.Sweep(lambda x: {"loss": x * x}, search=search, name="tune", output="trials", **quiet())

    @nbflow.action(reads=["trials"], writes=["best"])
    def pick(state):
        return state.update(best=float(state["trials"]["loss"].min()))

    app = (
        nbflow.ApplicationBuilder()
        .with_actions(tune=tune, pick=pick)
        .with_transitions(("tune", "pick"))
        .with_entrypoint("tune")
        .build()
    )
    *_, state = app.run(halt_after=["pick"])
    assert len(state["trials"]) == 8
    assert state["best"] == state["trials"]["loss"].min()


@pytest.mark.cluster
@pytest.mark.parametrize("executor_named", ["dask", "ray"], indirect=True)
def test_a_search_with_pruning_runs_on_a_cluster(executor_named):
    df = optimize(learning_curve, {"lr": uniform(0, 1)}, n_trials=12, metric="loss", prune="median", seed=0,
                  executor=executor_named, **quiet())  # fmt: skip
    assert len(df) == 12
    assert set(df["status"]) <= {"ok", "pruned"} and (df["status"] == "ok").any()


def test_processes_run_the_study_in_the_driver_and_the_points_in_workers(shutdown_processes):
    df = optimize(lambda x: {"loss": x, "pid": os.getpid()}, {"x": uniform(0, 1)}, n_trials=6, metric="loss",
                  executor="processes", n_jobs=2, seed=0, **quiet())  # fmt: skip
    assert os.getpid() not in set(df["pid"])
