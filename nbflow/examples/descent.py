"""An engine example: tune a step size for gradient descent with an nbflow graph.

Three actions form a loop with a conditional exit. ``descend`` takes a gradient
step on a quadratic bowl, ``adapt`` halves the step size whenever the loss went
up, and the loop ends in ``report`` once the loss is below a tolerance or the
step budget is spent. Every step is printed as it happens, then the final state.

Run it with ``python -m nbflow.examples.descent``. It needs nothing beyond nbflow's core, which
makes it the smallest whole application to read; ``scripts/demo`` runs the digits sweep instead.
"""

from __future__ import annotations

import argparse
import time

from nbflow import ApplicationBuilder, LifecycleHook, action, default, expr


@action(reads=["x", "lr", "target"], writes=["x", "loss", "losses"])
def descend(state):
    x, target, lr = state["x"], state["target"], state["lr"]
    x = x - lr * 2 * (x - target)  # gradient of (x - target)**2
    loss = (x - target) ** 2
    return state.update(x=x, loss=loss).append(losses=loss)


@action(reads=["losses", "lr"], writes=["lr", "halvings"])
def adapt(state):
    losses = state["losses"]
    if len(losses) >= 2 and losses[-1] > losses[-2]:
        return state.update(lr=state["lr"] / 2).increment(halvings=1)
    return state


@action(reads=["x", "loss", "losses", "halvings"], writes=["summary"])
def report(state):
    return state.update(
        summary=f"x={state['x']:.6f} loss={state['loss']:.2e} after {len(state['losses'])} steps, {state['halvings']} step-size halvings"
    )


def build(lr: float = 1.1, tolerance: float = 1e-10, budget: int = 200):
    """The application: a descend/adapt loop that exits to report."""
    return (
        ApplicationBuilder()
        .with_actions(descend=descend, adapt=adapt, report=report)
        .with_transitions(
            ("descend", "report", expr(f"loss < {tolerance!r} or len(losses) >= {budget}")),
            ("descend", "adapt", default),
            ("adapt", "descend"),
        )
        .with_state(x=10.0, target=3.0, lr=lr, losses=[], halvings=0)
        .with_entrypoint("descend")
        .with_identifiers(app_id="descent")
        .build()
    )


class PrintSteps(LifecycleHook):
    """Prints one line per step: the nbflow way to watch an application without touching it."""

    def post_step(self, *, action, state, result, sequence_id, **kwargs):
        if action.name == "descend":
            print(f"  step {sequence_id:3d}  descend  x={state['x']:+.6f}  loss={state['loss']:.3e}")
        elif result:  # adapt reports a result only when it changed the step size
            print(f"  step {sequence_id:3d}  adapt    loss went up: lr -> {state['lr']:.4f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=1.1, help="initial step size (above 1 diverges at first)")
    parser.add_argument("--tolerance", type=float, default=1e-10)
    parser.add_argument("--budget", type=int, default=200, help="most descent steps")
    args = parser.parse_args(argv)

    app = build(args.lr, args.tolerance, args.budget)
    app.hooks.append(PrintSteps())
    print(f"nbflow example: gradient descent on (x - 3)^2 from x=10 with lr={args.lr}")
    started = time.perf_counter()
    _, _, state = app.run(halt_after=["report"])
    elapsed = time.perf_counter() - started
    print(f"\n{state['summary']}  ({app.sequence_id + 1} engine steps in {elapsed * 1000:.1f} ms)")
    print(f"final state: {state!r}")


if __name__ == "__main__":
    main()
