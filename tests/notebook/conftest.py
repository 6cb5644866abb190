"""The notebook layer's fixtures: a real IPython shell with nbflow's magics loaded."""

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


def _forget_user_names(ip):
    # Keep IPython's own dunder names: the namespace is __main__'s, and multiprocessing and Dask
    # workers need __main__.__spec__ to start.
    for name in [n for n in ip.user_ns if not n.startswith("__")]:
        del ip.user_ns[name]


@pytest.fixture
def shell():
    """A real IPython shell with `%load_ext nbflow` done, and a clean namespace."""
    config = Config()
    config.HistoryManager.enabled = False  # its saving thread would outlive every test
    ip = InteractiveShell.instance(config=config)
    if "parallel_map" not in ip.magics_manager.magics["cell"]:
        ip.run_cell("%load_ext nbflow", store_history=False)
    _forget_user_names(ip)
    yield ip
    _forget_user_names(ip)
