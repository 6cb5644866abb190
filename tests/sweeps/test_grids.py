"""Grids: grid/zipped/sample, * and + composition, indexing, errors, reproducible sampling, reprs."""

import itertools
import math
import operator
import pickle
import re
import statistics

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from nbflow.errors import NbflowError, SweepError
from nbflow.sweeps.distributions import choice, loguniform, randint, sample, uniform
from nbflow.sweeps.grids import Grid, grid, zipped

NAMES = ["a", "b", "c", "d", "e"]
SMALL_VALUES = st.lists(st.integers(-5, 5), max_size=3)


def _reference_product(axes):
    """What grid(**axes) means, spelled with itertools.product."""
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


@st.composite
def grids(draw, names=None, depth=2):
    """A small Grid over exactly ``names``, nested up to ``depth`` levels of * and +."""
    if names is None:
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    kinds = ["grid", "zipped"]
    if depth > 0:
        kinds.append("concat")
        if len(names) > 1:
            kinds.append("product")
    kind = draw(st.sampled_from(kinds))
    if kind == "grid":
        return grid(**{name: draw(SMALL_VALUES) for name in names})
    if kind == "zipped":
        size = draw(st.integers(0, 3))
        return zipped(**{n: draw(st.lists(st.integers(), min_size=size, max_size=size)) for n in names})
    if kind == "product":
        cut = draw(st.integers(1, len(names) - 1))
        return draw(grids(names[:cut], depth - 1)) * draw(grids(names[cut:], depth - 1))
    shuffled = draw(st.permutations(names))
    return draw(grids(names, depth - 1)) + draw(grids(list(shuffled), depth - 1))


# -- grid ----------------------------------------------------------------------------------------


def test_grid_is_the_product_with_the_last_axis_fastest():
    """grid(**axes) lists every combination in itertools.product order."""
    g = grid(lr=[0.1, 0.01, 0.001], seed=[0, 1])
    assert len(g) == 6
    assert g.axes == ["lr", "seed"]
    assert g.points() == _reference_product({"lr": [0.1, 0.01, 0.001], "seed": [0, 1]})
    assert g.points()[:2] == [{"lr": 0.1, "seed": 0}, {"lr": 0.1, "seed": 1}]


def test_grid_accepts_any_iterable_and_keeps_values_as_given():
    """Tuples, ranges, numpy arrays, pandas Series and Index are axes; numpy scalars stay numpy scalars."""
    g = grid(
        a=(1, 2),
        b=range(2),
        c=np.array([0.5, 1.5]),
        d=pd.Series(["x", "y"], index=[10, 20]),
        e=pd.Index([7]),
    )
    assert len(g) == 2 * 2 * 2 * 2 * 1
    assert g[0] == {"a": 1, "b": 0, "c": 0.5, "d": "x", "e": 7}
    assert type(g[0]["c"]) is np.float64
    assert [p["d"] for p in g][:2] == ["x", "y"]


def test_grid_reads_a_generator_once():
    """A generator axis is materialized, so the grid can be iterated again and again."""
    g = grid(a=(x * 10 for x in range(3)))
    assert list(g) == list(g) == [{"a": 0}, {"a": 10}, {"a": 20}]


def test_grid_is_unaffected_by_later_changes_to_the_source_list():
    """The values are copied: mutating the list passed in leaves the grid alone."""
    values = [1, 2]
    g = grid(a=values)
    values.append(3)
    assert len(g) == 2


def test_grid_yields_a_fresh_dict_per_point():
    """Changing a point a grid gave out does not change the grid."""
    g = grid(a=[1, 2])
    for point in g:
        point["a"] = "changed"
    g[0]["a"] = "changed"
    assert g.points() == [{"a": 1}, {"a": 2}]
    assert g[0] is not g[0]


def test_grid_with_an_empty_axis_is_empty():
    """An empty axis makes a grid of 0 points that keeps its axes, not an error."""
    g = grid(a=[1, 2], b=[])
    assert len(g) == 0
    assert not g
    assert g.axes == ["a", "b"]
    assert list(g) == g.points() == []
    with pytest.raises(IndexError, match="out of range for a grid of 0 points"):
        g[0]
    assert (g * grid(c=[1])).points() == []
    assert (g + grid(b=[5], a=[6])).points() == [{"a": 6, "b": 5}]


def test_grid_without_axes_is_one_empty_point():
    """grid() is the identity of *: one point with no parameters."""
    assert grid().points() == [{}]
    assert (grid() * grid(a=[1, 2])).points() == grid(a=[1, 2]).points()
    assert repr(grid()) == "Grid(no axes = 1 point)"


def test_grid_refuses_a_non_iterable_axis_and_suggests_a_list():
    """A scalar axis raises SweepError naming the axis and the [value] fix."""
    with pytest.raises(SweepError) as info:
        grid(lr=0.1, seed=[1])
    assert str(info.value) == (
        "grid(): axis 'lr' must be an iterable of values, got float 0.1. For a single value use lr=[0.1]."
    )


@pytest.mark.parametrize("value", ["adam", b"adam"])
def test_grid_refuses_a_string_axis(value):
    """A str or bytes axis would sweep over characters, so it is refused with the [value] fix."""
    with pytest.raises(SweepError) as info:
        grid(opt=value)
    message = str(info.value)
    assert "axis 'opt'" in message
    assert "each character" in message
    assert f"opt=[{value!r}]" in message


def test_grid_refuses_sets_and_mappings_naming_the_fix():
    """A set (unstable order) or a dict (keys or values?) is refused with a spelled-out fix."""
    with pytest.raises(SweepError, match=r"axis 'opt' is a set.*Pass opt=sorted\(\.\.\.\)"):
        grid(opt={"adam", "sgd"})
    with pytest.raises(SweepError, match=r"axis 'cfg' is a dict.*cfg=list\(d\).*cfg=list\(d\.values\(\)\)"):
        grid(cfg={"a": 1})


def test_sweep_error_is_a_value_error_and_an_nbflow_error():
    """SweepError is caught by `except ValueError` and by `except NbflowError`."""
    with pytest.raises(ValueError):
        grid(a=1)
    with pytest.raises(NbflowError):
        grid(a=1)


# -- indexing -------------------------------------------------------------------------------------


def test_grid_getitem_supports_negative_indexes_and_slices():
    """g[-1] is the last point; a slice gives a list of points."""
    g = grid(a=[1, 2], b=[3, 4, 5])
    assert g[-1] == {"a": 2, "b": 5}
    assert g[-6] == g[0] == {"a": 1, "b": 3}
    assert g[1:3] == [{"a": 1, "b": 4}, {"a": 1, "b": 5}]
    assert g[::-3] == [g[5], g[2]]
    assert g[np.int64(4)] == {"a": 2, "b": 4}


def test_grid_getitem_out_of_range_names_the_index_and_size():
    """An index past either end raises IndexError naming it and the grid's size."""
    g = grid(a=[1, 2, 3])
    with pytest.raises(IndexError) as info:
        g[3]
    assert str(info.value) == "Grid index 3 is out of range for a grid of 3 points."
    with pytest.raises(IndexError, match="Grid index -4"):
        g[-4]
    with pytest.raises(TypeError, match="integers or slices, not str"):
        g["a"]


def test_grid_getitem_on_a_huge_product_does_not_materialize():
    """A trillion-point product answers len and g[i] at once, and keeps a range a range."""
    g = grid(a=range(10**6), b=range(10**6)) * zipped(c=range(3), d=range(3, 6))
    assert len(g) == 3 * 10**12
    assert g[-1] == {"a": 999_999, "b": 999_999, "c": 2, "d": 5}
    assert g[123_456_789 * 3 + 1] == {"a": 123, "b": 456_789, "c": 1, "d": 4}


@settings(max_examples=200, deadline=None)
@given(grids())
def test_grid_indexing_matches_iteration(g):
    """For any composed grid, g[i] is the i-th point iterated, and len counts them."""
    points = list(g)
    assert len(g) == len(points)
    assert [g[i] for i in range(len(g))] == points
    assert [g[i - len(g)] for i in range(len(g))] == points
    assert all(list(p) == g.axes for p in points)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), SMALL_VALUES, max_size=4))
def test_grid_matches_itertools_product(axes):
    """grid(**axes) lists exactly itertools.product's combinations, in its order."""
    assert grid(**axes).points() == _reference_product(axes)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_grid_product_of_grids_is_every_pair(data):
    """g1 * g2 has len(g1) * len(g2) points: each point of g1 merged with each of g2, g2 fastest."""
    names = data.draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=5, unique=True))
    cut = data.draw(st.integers(1, len(names) - 1))
    left, right = data.draw(grids(names[:cut])), data.draw(grids(names[cut:]))
    product = left * right
    assert len(product) == len(left) * len(right)
    assert product.axes == left.axes + right.axes
    assert product.points() == [{**p, **q} for p in left for q in right]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_grid_concat_is_one_after_the_other_in_the_left_axis_order(data):
    """g1 + g2 lists g1's points then g2's, each with g1's axis order."""
    names = data.draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    left = data.draw(grids(names))
    right = data.draw(grids(list(data.draw(st.permutations(names)))))
    joined = left + right
    assert len(joined) == len(left) + len(right)
    assert joined.axes == left.axes
    assert joined.points() == [*left, *({a: q[a] for a in left.axes} for q in right)]
    assert all(list(p) == left.axes for p in joined)


# -- zipped ---------------------------------------------------------------------------------------


def test_zipped_pairs_axes_position_by_position():
    """zipped() makes one point per position, in order."""
    z = zipped(lr=[0.1, 0.01, 0.001], batch=(32, 64, 128))
    assert len(z) == 3
    assert z.axes == ["lr", "batch"]
    assert z.points() == [
        {"lr": 0.1, "batch": 32},
        {"lr": 0.01, "batch": 64},
        {"lr": 0.001, "batch": 128},
    ]


def test_zipped_empty_axes_make_an_empty_grid():
    """zipped() of empty axes has 0 points."""
    assert zipped(a=[], b=()).points() == []


def test_zipped_unequal_lengths_names_every_axis_with_its_length():
    """Axes of different lengths raise SweepError listing each axis and its length."""
    with pytest.raises(SweepError) as info:
        zipped(lr=[0.1, 0.01, 0.001], batch=[32, 64], seed=range(3))
    assert str(info.value) == (
        "zipped() needs axes of equal length, but 'lr' has 3, 'batch' has 2, 'seed' has 3. "
        "Make them the same length, or use grid(...) for every combination."
    )


def test_zipped_refuses_no_axes_and_bad_axes():
    """zipped() needs an axis, and refuses a string axis like grid() does."""
    with pytest.raises(SweepError, match=r"zipped\(\) needs at least one axis"):
        zipped()
    with pytest.raises(SweepError, match=r"zipped\(\): axis 'opt' is a str"):
        zipped(opt="adam", lr=[1, 2, 3, 4])


# -- composition ----------------------------------------------------------------------------------


def test_grid_product_puts_the_left_axes_first():
    """g1 * g2 lists g1's axes first and varies g2 fastest."""
    g = grid(a=[1, 2]) * grid(b=["x", "y"])
    assert g.axes == ["a", "b"]
    assert g.points() == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]


def test_grid_nested_composition():
    """(grid + grid) * zipped is a Grid with the concatenated axis outermost."""
    g = (grid(a=[1, 2]) + grid(a=[9])) * zipped(b=[1, 2], c=[3, 4])
    assert isinstance(g, Grid)
    assert len(g) == 6
    assert g.axes == ["a", "b", "c"]
    assert [(p["a"], p["b"], p["c"]) for p in g] == [
        (1, 1, 3), (1, 2, 4), (2, 1, 3), (2, 2, 4), (9, 1, 3), (9, 2, 4),
    ]  # fmt: skip
    assert g[-2] == {"a": 9, "b": 1, "c": 3}


def test_grid_concat_reorders_the_right_points_into_the_left_axis_order():
    """Concatenating grids whose axes come in another order keeps the left order in every point."""
    g = grid(a=[1], b=[2]) + grid(b=[3], a=[4])
    assert g.points() == [{"a": 1, "b": 2}, {"a": 4, "b": 3}]
    assert list(g[1]) == ["a", "b"]


def test_grid_product_with_a_shared_axis_names_the_duplicates():
    """A product of grids sharing axes raises SweepError naming the shared axes and both axis lists."""
    with pytest.raises(SweepError) as info:
        grid(lr=[1], seed=[1], depth=[2]) * (grid(seed=[2]) * zipped(depth=[3], width=[4]))
    message = str(info.value)
    assert "share the axes ['seed', 'depth']" in message
    assert "the left has ['lr', 'seed', 'depth'], the right ['seed', 'depth', 'width']" in message
    assert "use + to run grids with the same axes" in message


def test_grid_concat_with_different_axes_lists_both():
    """Concatenating grids with different axes raises SweepError listing both and the difference."""
    with pytest.raises(SweepError) as info:
        grid(lr=[1], seed=[1]) + grid(lr=[2], depth=[3])
    assert str(info.value) == (
        "Can't concatenate grids with different axes: ['lr', 'seed'] + ['lr', 'depth'] "
        "(only on the left: ['seed']; only on the right: ['depth']). Give both the same axes, "
        "e.g. multiply the grid that lacks 'seed' by grid(seed=[value])."
    )


def test_grid_composition_with_a_non_grid_is_a_type_error():
    """`g * 3` and `g + [..]` are not defined: Python's TypeError, no silent repetition."""
    with pytest.raises(TypeError):
        grid(a=[1]) * 3
    with pytest.raises(TypeError):
        operator.add(grid(a=[1]), [{"a": 2}])


# -- immutability and pickling --------------------------------------------------------------------


def test_grid_is_immutable():
    """Setting or deleting an attribute raises AttributeError saying how to build a new grid."""
    g = grid(a=[1, 2])
    with pytest.raises(AttributeError, match="Grid is immutable: can't set '_len'"):
        g._len = 5
    with pytest.raises(AttributeError, match="immutable"):
        del g._axes
    with pytest.raises(TypeError, match="not built directly"):
        Grid()


def test_grid_survives_pickling():
    """A composed grid and a sample pickle to grids with the same points and repr."""
    for g in [
        (grid(a=[1, 2]) + grid(a=[9])) * zipped(b=range(2), c=[3, 4]),
        sample(4, seed=1, lr=loguniform(1e-3, 1), opt=["x", "y"], d=randint(1, 3), u=uniform(0, 1)),
    ]:
        copy = pickle.loads(pickle.dumps(g))
        assert copy.points() == g.points()
        assert repr(copy) == repr(g)


# -- sample ---------------------------------------------------------------------------------------


def test_sample_size_axes_and_ranges():
    """sample(n) gives n points whose values fall inside their distributions."""
    g = sample(
        200,
        seed=0,
        lr=loguniform(1e-4, 1e-1),
        dropout=uniform(0.0, 0.5),
        depth=randint(1, 3),
        opt=choice(["adam", "sgd"]),
        act=("relu", "gelu"),
    )
    assert len(g) == 200
    assert g.axes == ["lr", "dropout", "depth", "opt", "act"]
    points = list(g)
    assert all(0.0 <= p["dropout"] <= 0.5 for p in points)
    assert {p["depth"] for p in points} == {1, 2, 3}  # both ends included
    assert {p["opt"] for p in points} == {"adam", "sgd"}
    assert {p["act"] for p in points} == {"relu", "gelu"}
    assert [g[i] for i in range(len(g))] == points


def test_sample_is_reproducible_for_a_seed():
    """The same seed draws the same points; another seed draws others."""
    axes = {"lr": loguniform(1e-4, 1e-1), "depth": randint(1, 100), "opt": ["a", "b", "c"]}
    assert sample(20, seed=7, **axes).points() == sample(20, seed=7, **axes).points()
    assert sample(20, seed=7, **axes).points() != sample(20, seed=8, **axes).points()
    assert sample(20, seed="run-a", **axes).points() == sample(20, seed="run-a", **axes).points()


def test_sample_pins_its_values_to_known_draws():
    """Draws come from random.Random alone, so these exact values hold on every platform, numpy or not."""
    axes = {"depth": randint(1, 1000), "opt": ["a", "b", "c", "d"], "u": uniform(0, 1)}
    expected = [
        {"depth": 231, "opt": "a", "u": 0.3804424904702256},
        {"depth": 536, "opt": "d", "u": 0.549444780117757},
        {"depth": 481, "opt": "d", "u": 0.5541366768468003},
    ]
    assert sample(3, seed=0, **axes).points() == expected
    assert sample(3, seed=np.int64(0), **axes).points() == expected


def test_sample_axes_draw_independently_and_a_larger_n_extends_a_smaller():
    """Adding an axis leaves the others' values alone, and sample(n) is a prefix of sample(n + k)."""
    small = sample(5, seed=3, lr=uniform(0, 1))
    more_axes = sample(5, seed=3, depth=randint(1, 9), lr=uniform(0, 1))
    assert [p["lr"] for p in more_axes] == [p["lr"] for p in small]
    assert sample(8, seed=3, lr=uniform(0, 1)).points()[:5] == small.points()


def test_sample_without_seed_draws_fresh_points_and_shows_the_seed():
    """seed=None gives different points each call, and the repr shows the seed to draw them again."""
    first, second = sample(5, lr=uniform(0, 1)), sample(5, lr=uniform(0, 1))
    assert first.points() != second.points()
    seed = int(re.search(r"seed=(\d+)\)", repr(first)).group(1))
    assert sample(5, seed=seed, lr=uniform(0, 1)).points() == first.points()


def test_sample_loguniform_stays_in_range_and_spreads_over_the_decades():
    """loguniform(1e-5, 1e-1) stays within bounds and puts about a quarter of its draws in each decade."""
    values = [p["lr"] for p in sample(2000, seed=11, lr=loguniform(1e-5, 1e-1))]
    assert all(1e-5 <= v <= 1e-1 for v in values)
    logs = [math.log10(v) for v in values]
    assert abs(statistics.fmean(logs) - -3) < 0.1
    per_decade = [sum(lo <= x < lo + 1 for x in logs) for lo in (-5, -4, -3, -2)]
    assert all(400 < count < 600 for count in per_decade), per_decade


def test_sample_loguniform_with_equal_bounds_is_constant():
    """loguniform(x, x) always draws x exactly, despite exp(log(x)) rounding."""
    assert {p["lr"] for p in sample(50, seed=0, lr=loguniform(0.3, 0.3))} == {0.3}


@pytest.mark.parametrize("n", [0, -3])
def test_sample_refuses_a_non_positive_n(n):
    """n < 1 raises SweepError naming n."""
    with pytest.raises(SweepError) as info:
        sample(n, lr=uniform(0, 1))
    assert str(info.value) == f"sample() needs n >= 1 points, got n={n}."


def test_sample_refuses_a_non_integer_n_or_seed():
    """A float n or seed raises SweepError naming the parameter."""
    with pytest.raises(SweepError, match=r"needs an integer n \(how many points\), got float 2\.5"):
        sample(2.5, lr=uniform(0, 1))
    with pytest.raises(SweepError, match=r"int or a str for seed, got float 1\.5"):
        sample(2, seed=1.5, lr=uniform(0, 1))


def test_sample_refuses_no_axes_and_non_distributions():
    """sample() needs an axis, and each axis needs a distribution or a list of options."""
    with pytest.raises(SweepError, match="needs at least one axis to draw"):
        sample(3)
    with pytest.raises(SweepError) as info:
        sample(3, lr=0.1)
    message = str(info.value)
    assert "can't draw 'lr' from float 0.1" in message
    assert "loguniform(low, high)" in message
    assert "lr=[0.1]" in message
    with pytest.raises(SweepError, match=r"sample\(\): 'opt' is an empty list"):
        sample(3, opt=[])


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(
            lambda: uniform(2, 1),
            "uniform() needs low <= high, got low=2 and high=1. Swap them: uniform(1, 2).",
            id="uniform-high-below-low",
        ),
        pytest.param(
            lambda: loguniform(1, 0.5),
            "loguniform() needs low <= high, got low=1 and high=0.5.",
            id="loguniform-high-below-low",
        ),
        pytest.param(lambda: loguniform(0, 1), "loguniform() needs low > 0", id="loguniform-zero-low"),
        pytest.param(
            lambda: loguniform(-1e-3, 1),
            "got low=-0.001. Use a small positive low such as 1e-8",
            id="loguniform-negative-low",
        ),
        pytest.param(
            lambda: randint(5, 1),
            "randint() needs low <= high, got low=5 and high=1.",
            id="randint-high-below-low",
        ),
        pytest.param(
            lambda: randint(0.5, 3),
            "randint() needs integers, got low=0.5. For floats use uniform(0.5, 3).",
            id="randint-float-low",
        ),
        pytest.param(
            lambda: randint(1, "9"), "randint() needs integers, got high='9'.", id="randint-str-high"
        ),
        pytest.param(
            lambda: uniform(float("nan"), 1),
            "uniform() needs a finite number for low, got float nan.",
            id="uniform-nan-low",
        ),
        pytest.param(
            lambda: uniform(0, "1"),
            "uniform() needs a finite number for high, got str '1'.",
            id="uniform-str-high",
        ),
        pytest.param(
            lambda: choice([]),
            "choice(): options is an empty list; give at least one option to choose from.",
            id="choice-empty",
        ),
        pytest.param(
            lambda: choice("abc"),
            "choice(): options is a str ('abc'), which would use each character",
            id="choice-string",
        ),
        pytest.param(
            lambda: choice(3),
            "choice(): options must be an iterable of values, got int 3. For a single value use choice([3]).",
            id="choice-scalar",
        ),
    ],
)
def test_distribution_refuses_bad_parameters(make, expected):
    """A bad distribution raises SweepError naming the parameter at fault and the fix."""
    with pytest.raises(SweepError) as info:
        make()
    assert expected in str(info.value)


def test_choice_keeps_its_options_as_given():
    """choice() accepts any iterable of options and draws them unchanged."""
    g = sample(30, seed=0, opt=choice(x for x in ("adam", "sgd")), size=choice(np.array([1, 2])))
    assert {p["opt"] for p in g} == {"adam", "sgd"}
    assert all(type(p["size"]) is np.int64 for p in g)


# -- reprs ----------------------------------------------------------------------------------------


def test_grid_repr_shows_structure_and_size():
    """The repr names each axis or zip with its size, joins them with × and +, and counts the points."""
    assert repr(grid(lr=[1, 2, 3], seed=[0, 1])) == "Grid(lr: 3 values × seed: 2 values = 6 points)"
    assert repr(grid(a=[1])) == "Grid(a: 1 value = 1 point)"
    assert repr(zipped(b=[1, 2], c=[3, 4])) == "Grid(zip(b, c): 2 values = 2 points)"
    nested = (grid(a=[1, 2]) + grid(a=[9])) * zipped(b=[1, 2], c=[3, 4])
    assert repr(nested) == "Grid((a: 2 values + a: 1 value) × zip(b, c): 2 values = 6 points)"
    assert repr(grid(a=[1]) * grid(b=[1]) + grid(a=[2], b=[]) * grid()) == (
        "Grid(a: 1 value × b: 1 value + a: 1 value × b: 0 values = 1 point)"
    )


def test_sample_repr_shows_the_distributions_and_the_seed():
    """A sample's repr spells each axis's distribution and the seed."""
    g = sample(20, seed=0, lr=loguniform(1e-5, 0.1), depth=randint(1, 9), opt=["adam", "sgd"])
    assert repr(g) == (
        "Grid(sample(lr ~ loguniform(1e-05, 0.1), depth ~ randint(1, 9), opt ~ choice(['adam', 'sgd']), "
        "seed=0): 20 values = 20 points)"
    )


def test_grid_repr_html_is_a_table_of_the_first_points():
    """_repr_html_ shows a table of the first 10 points, escaped, and how many more there are."""
    page = grid(tag=["<b>", "ok"], i=range(50))._repr_html_()
    assert page.startswith("<table><caption>Grid(tag: 2 values × i: 50 values = 100 points)</caption>")
    assert "<th>tag</th><th>i</th>" in page
    assert "<td><code>&#x27;&lt;b&gt;&#x27;</code></td><td><code>9</code></td>" in page
    assert "<code>10</code>" not in page
    assert "… 90 more points" in page
    assert "more point" not in grid(a=[1, 2])._repr_html_()
