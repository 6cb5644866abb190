"""The notebook layer: ``%load_ext nbflow`` and the ``%%parallel_map`` magic.

Imports IPython; nothing below it imports this package.
"""

from nbflow.notebook.magic import ParallelMapMagics

__all__ = ["load_ipython_extension", "ParallelMapMagics"]


def load_ipython_extension(ipython) -> None:
    """Register nbflow's magics with ``ipython`` (what ``%load_ext nbflow`` calls)."""
    ipython.register_magics(ParallelMapMagics)
