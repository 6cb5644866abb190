"""The progress bar a running sweep shows: tqdm.auto (a widget in Jupyter, text in a terminal), or yours."""

from __future__ import annotations

from typing import Any

__all__ = ["make_progress"]


def make_progress(progress: Any, total: int, desc: str) -> Any:
    """A progress bar for ``total`` points, or None.

    Args:
        progress: True for ``tqdm.auto.tqdm`` (a widget in Jupyter, text in a
            terminal), False/None for none, or a tqdm-like class or factory taking
            ``total``, ``desc`` and ``unit`` (tests pass a recorder).
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="pt", leave=True)
    if callable(progress):
        return progress(total=total, desc=desc, unit="pt")
    msg = f"progress= takes True, False, or a tqdm-like class; got {type(progress).__name__}."
    raise TypeError(msg)
