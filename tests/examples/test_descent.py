"""The engine example: gradient descent as a descend/adapt loop."""

from nbflow.examples import descent


def test_descent_converges_and_reports_each_step(capsys):
    """The loop halves its step size once, converges to x=3 and prints every descent step."""
    descent.main([])
    out = capsys.readouterr().out
    assert "adapt    loss went up: lr -> 0.5500" in out
    assert "after 9 steps, 1 step-size halvings" in out
    assert out.count("descend  x=") == 9


def test_descent_respects_the_step_budget():
    """With a tiny budget the loop exits to report after that many descents."""
    _, _, state = descent.build(lr=0.01, budget=5).run(halt_after=["report"])
    assert len(state["losses"]) == 5 and "after 5 steps" in state["summary"]
