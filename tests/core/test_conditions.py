"""Transition conditions: when, expr, default, their combinations and their errors."""

import pytest

from nbflow import ConditionError, State, default, expr, when


def test_when_matches_every_pair():
    """when(a=1, b=2) holds only when both keys have those values."""
    cond = when(a=1, b=2)
    assert cond(State(a=1, b=2)) is True
    assert cond(State(a=1, b=3)) is False
    assert cond.keys == ("a", "b")


def test_when_without_pairs_points_to_default():
    """An empty when() is refused with a pointer to `default`."""
    with pytest.raises(ConditionError, match="use `default`"):
        when()


def test_expr_evaluates_over_state_keys():
    """expr() reads state keys by name and may use arithmetic, subscripts and safe builtins."""
    state = State(count=11, scores=[0.5, 0.9], name="run")
    assert expr("count > 10")(state)
    assert expr("len(scores) == 2 and max(scores) >= 0.9")(state)
    assert expr("scores[-1] - scores[0] > 0.3 or name == 'x'")(state)
    assert not expr("count % 2 == 0")(state)
    assert expr("len(scores) == 2").keys == ("scores",)


def test_expr_that_does_not_parse_names_the_expression():
    """A syntax error is reported at build time with the expression and an example."""
    with pytest.raises(ConditionError, match=r"'count >' does not parse.*expr\('count > 10'\)"):
        expr("count >")


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("__import__('os')", "calls __import__"),
        ("count.__class__", "private attribute '__class__'"),
        ("[x for x in count]", "uses ListComp"),
        ("(lambda: 1)", "uses Lambda"),
        ("open('f')", "calls open"),
    ],
)
def test_expr_refuses_syntax_outside_the_whitelist(source, complaint):
    """Conditions cannot import, call arbitrary functions or reach private attributes."""
    with pytest.raises(ConditionError, match=complaint):
        expr(source)


def test_condition_on_a_missing_key_names_the_key_and_state_keys():
    """Evaluating a condition whose key is absent names the key, the condition and the known keys."""
    with pytest.raises(ConditionError) as info:
        expr("count > 10")(State(other=1))
    message = str(info.value)
    assert "'count > 10'" in message and "'count'" in message and "['other']" in message


def test_conditions_combine_with_not_and_or():
    """~, & and | build new conditions whose keys are the union of their parts."""
    state = State(a=1, b=2)
    assert (~when(a=2))(state)
    assert (when(a=1) & expr("b == 2"))(state)
    assert not (when(a=2) & expr("b == 2"))(state)
    assert (when(a=2) | expr("b == 2"))(state)
    combined = when(a=1) | expr("b > 1")
    assert combined.keys == ("a", "b")
    assert combined.name == "(a=1) or ('b > 1')"


def test_default_always_holds_and_reads_nothing():
    """default is the unconditional transition."""
    assert default(State()) and default.keys == ()


def test_combining_with_a_non_condition_is_refused():
    """when(...) & True is a TypeError that says what conditions combine with."""
    with pytest.raises(TypeError, match="combine with other conditions"):
        when(a=1) & True
