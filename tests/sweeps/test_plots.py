"""df.nbflow.plot picks the chart from the sweep's shape, and plot_curves draws one line per point.

The assertions are on the Axes (lines, containers, images, labels), never on pixels.
"""

import subprocess
import sys

import matplotlib
import pytest

import nbflow
from nbflow.errors import ResultsError

matplotlib.use("Agg")
import matplotlib.pyplot as plt


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _sweep(fn, axes):
    return nbflow.sweep(fn, axes, progress=False, cache=False)


def test_one_numeric_axis_is_a_line_with_a_point_per_value():
    df = _sweep(lambda lr: {"acc": lr * 2}, {"lr": [0.1, 0.2, 0.3]})
    ax = df.nbflow.plot("acc")
    (container,) = ax.containers
    x, y = container.lines[0].get_data()
    assert list(x) == [0.1, 0.2, 0.3] and list(y) == pytest.approx([0.2, 0.4, 0.6])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("lr", "acc")
    assert container.has_yerr is False  # nothing repeats a point: no error bars


def test_seeds_are_averaged_into_error_bars_and_a_log_spaced_axis_gets_a_log_scale():
    df = _sweep(lambda lr, seed: {"acc": lr + seed}, {"lr": [1e-4, 1e-3, 1e-2], "seed": [0, 1, 2]})
    ax = df.nbflow.plot("acc")
    (container,) = ax.containers
    x, y = container.lines[0].get_data()
    assert list(x) == [1e-4, 1e-3, 1e-2]
    assert list(y) == pytest.approx([1e-4 + 1, 1e-3 + 1, 1e-2 + 1])  # the mean over seeds 0, 1, 2
    assert container.has_yerr
    assert ax.get_xscale() == "log"
    assert ax.get_ylabel() == "acc (mean ± std)"


def test_two_axes_make_a_heatmap_of_their_shape_with_labelled_ticks():
    df = _sweep(lambda lr, depth: {"acc": lr * depth}, {"lr": [0.1, 1.0], "depth": [1, 2, 3]})
    ax = df.nbflow.plot("acc")
    (image,) = ax.images
    assert image.get_array().shape == (3, 2)  # depth down, lr across
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("lr", "depth")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.1", "1"]
    assert image.get_array()[2, 1] == pytest.approx(3.0)


def test_three_axes_make_parallel_coordinates_with_one_line_per_row():
    df = _sweep(lambda a, b, c: {"score": a * b + len(c)}, {"a": [1, 2], "b": [0.5, 1.5], "c": ["x", "yy"]})
    ax = df.nbflow.plot("score")
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["a", "b", "c", "score"]
    rows = [line for line in ax.lines if len(line.get_xdata()) == len(ticks)]
    assert len(rows) == len(df)


def test_a_categorical_axis_is_a_bar_chart():
    df = _sweep(lambda opt: {"acc": len(opt)}, {"opt": ["adam", "sgd", "lbfgs"]})
    ax = df.nbflow.plot("acc")
    assert [p.get_height() for p in ax.patches] == [4, 3, 5]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["adam", "sgd", "lbfgs"]


def test_keywords_override_the_choice():
    df = _sweep(lambda lr, depth: {"acc": lr * depth}, {"lr": [0.1, 1.0], "depth": [1, 2, 3]})
    ax = df.nbflow.plot("acc", x="depth", by="lr")
    assert len(ax.containers) == 2  # one line per lr
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lr=0.1", "lr=1"]
    _, drawn = plt.subplots()
    assert df.nbflow.plot("acc", kind="heatmap", x="depth", by="lr", ax=drawn) is drawn
    assert drawn.images[0].get_array().shape == (2, 3)


def test_failed_rows_are_left_out_of_the_plot():
    def fit(x):
        if x == 2:
            raise ValueError("diverged")
        return {"acc": x}

    df = _sweep(fit, {"x": [1, 2, 3]})
    x, _ = df.nbflow.plot("acc").containers[0].lines[0].get_data()
    assert list(x) == [1, 3]


def test_bad_arguments_name_the_culprit_and_the_fix():
    df = _sweep(lambda lr: {"acc": lr, "name": "m"}, {"lr": [0.1, 0.2]})
    with pytest.raises(ResultsError, match=r"No column 'loss'.*'acc'"):
        df.nbflow.plot("loss")
    with pytest.raises(ResultsError, match=r"'name' holds .* cannot be plotted"):
        df.nbflow.plot("name")
    with pytest.raises(ValueError, match=r"kind='pie'.*'heatmap'"):
        df.nbflow.plot("acc", kind="pie")
    with pytest.raises(ResultsError, match=r"x='depth'.*\['lr'\]"):
        df.nbflow.plot("acc", x="depth")
    with pytest.raises(ResultsError, match="only 'lr' varies"):
        df.nbflow.plot("acc", kind="heatmap")


def test_a_frame_without_provenance_needs_x():
    df = _sweep(lambda lr: {"acc": lr}, {"lr": [0.1, 0.2]})
    bare = df.copy()
    bare.attrs = {}
    with pytest.raises(ResultsError, match="Pass x="):
        bare.nbflow.plot("acc")
    assert len(bare.nbflow.plot("acc", x="lr").containers) == 1


def test_plot_curves_draws_one_line_per_point_coloured_by_an_axis():
    def fit(lr, opt):
        for step in range(4):
            nbflow.report(loss=lr / (step + 1))

    df = _sweep(fit, {"lr": [0.1, 1.0, 10.0], "opt": ["adam", "sgd"]})
    ax = df.nbflow.plot_curves("loss")
    assert len(ax.lines) == 6
    assert all(list(line.get_xdata()) == [0, 1, 2, 3] for line in ax.lines)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("step", "loss")
    colorbar = ax.figure.axes[-1]
    assert colorbar.get_ylabel() == "lr"  # a numeric axis gets a colour scale

    ax = df.nbflow.plot_curves("loss", by="opt")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["adam", "sgd"]
    colours = {line.get_color() for line in ax.lines}
    assert len(colours) == 2


def test_plot_curves_of_a_slice_draws_only_its_points_and_names_the_metrics_it_has():
    def fit(lr):
        for step in range(3):
            nbflow.report(step=step, loss=lr * step)

    df = _sweep(fit, {"lr": [1.0, 2.0, 3.0]})
    assert len(df[df["lr"] > 1].nbflow.plot_curves("loss").lines) == 2
    with pytest.raises(ResultsError, match=r"'acc'.*\['loss'\]"):
        df.nbflow.plot_curves("acc")


def test_without_matplotlib_the_error_names_the_extra(tmp_path):
    # A real interpreter where importing matplotlib fails, as on a machine without the extra.
    (tmp_path / "matplotlib").mkdir()
    (tmp_path / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib here')")
    code = (
        "import nbflow\n"
        "df = nbflow.sweep(lambda lr: lr, {'lr': [1, 2]}, progress=False, cache=False)\n"
        "try:\n"
        "    df.nbflow.plot('result')\n"
        "except nbflow.errors.MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin"},
    ).stdout
    assert "pip install 'nbflow[plot]'" in out


def test_an_axis_named_step_keeps_its_values_and_the_reports_step_moves_aside():
    def fit(step):
        for epoch in range(2):
            nbflow.report(step=epoch, loss=step * (epoch + 1))

    df = _sweep(fit, {"step": [0.1, 0.2]})
    curves = df.nbflow.curves()
    assert list(curves.columns) == ["step", "task_id", "nbflow_step", "loss"]
    assert curves["step"].tolist() == [0.1, 0.1, 0.2, 0.2]
    assert curves["nbflow_step"].tolist() == [0, 1, 0, 1]
    assert len(df.nbflow.plot_curves("loss").lines) == 2


def test_list_valued_axes_are_grouped_and_labelled_by_their_text():
    def fit(layers, lr):
        for epoch in range(2):
            nbflow.report(loss=lr * len(layers) / (epoch + 1))
        return {"acc": lr * len(layers)}

    df = _sweep(fit, {"layers": [[64], [64, 64]], "lr": [0.1, 0.2]})
    ax = df.nbflow.plot("acc")
    assert ax.images[0].get_array().shape == (2, 2)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["[64]", "[64, 64]"]
    ax = df.nbflow.plot_curves("loss", by="layers")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["[64]", "[64, 64]"]
