"""Executors on a Dask or Ray cluster, through joblib's ``dask`` and ``ray`` backends.

nbflow never runs a cluster of its own: these executors use one you already
have (a ``distributed.Client``, an address, a running Ray) or, when asked,
start a local one for you. Tasks are pickled with cloudpickle and carry only
the state keys their graph reads and writes.
"""

from __future__ import annotations

from typing import Any

from nbflow.errors import MissingDependencyError
from nbflow.parallel.executors import JoblibExecutor

__all__ = ["DaskExecutor", "RayExecutor"]


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        msg = f"This executor needs {module!r}, which is not installed. Install it with: pip install 'nbflow[{extra}]'"
        raise MissingDependencyError(msg) from None


class DaskExecutor(JoblibExecutor):
    """Runs tasks on a Dask cluster through joblib's ``dask`` backend.

    Args:
        client: a ``distributed.Client`` to use.
        address: a scheduler address to connect to (``"tcp://host:8786"``).
        local: with neither, start a ``LocalCluster`` (owned by this executor and
            closed by `shutdown`) instead of using the current default client.
        max_concurrency: how many tasks run at once (joblib's ``n_jobs``).
        **cluster_kwargs: passed to ``LocalCluster`` when one is started.
    """

    name = "dask"
    ships_tasks = True

    def __init__(
        self,
        client: Any = None,
        address: str | None = None,
        *,
        local: bool = False,
        max_concurrency: int | None = None,
        **cluster_kwargs: Any,
    ):
        _require("distributed", "dask")
        super().__init__("dask", max_concurrency)
        self.client = client
        self.address = address
        self.local = local
        self.cluster_kwargs = cluster_kwargs
        self._owned: list[Any] = []

    def _client(self) -> Any:
        distributed = _require("distributed", "dask")
        if self.client is None:
            if self.address is not None:
                self.client = distributed.Client(self.address)
                self._owned.append(self.client)
            elif self.local:
                cluster = distributed.LocalCluster(**{"dashboard_address": None, **self.cluster_kwargs})
                self.client = distributed.Client(cluster)
                self._owned.extend((self.client, cluster))
            else:
                try:
                    self.client = distributed.get_client()
                except ValueError:
                    msg = "DaskExecutor found no Dask client. Pass client=Client(...), address='tcp://...', or local=True to start a LocalCluster."
                    raise MissingDependencyError(msg) from None
        return self.client

    def _parallel(self) -> Any:
        import joblib

        with joblib.parallel_config(backend="dask", client=self._client()):
            return super()._parallel()

    def shutdown(self) -> None:
        for owned in self._owned:
            owned.close()
        self._owned.clear()
        if self.local or self.address is not None:
            self.client = None


class RayExecutor(JoblibExecutor):
    """Runs tasks on Ray through ``ray.util.joblib``.

    Args:
        address: a Ray cluster to connect to (``"ray://host:10001"`` or ``"auto"``);
            None uses a running Ray or starts a local one.
        max_concurrency: how many tasks run at once (joblib's ``n_jobs``).
        **init_kwargs: passed to ``ray.init`` when this executor starts Ray.
    """

    name = "ray"
    ships_tasks = True

    def __init__(self, address: str | None = None, *, max_concurrency: int | None = None, **init_kwargs: Any):
        _require("ray", "ray")
        super().__init__("ray", max_concurrency)
        self.address = address
        self.init_kwargs = init_kwargs
        self._started = False

    def _parallel(self) -> Any:
        ray = _require("ray", "ray")
        from ray.util.joblib import register_ray

        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_kwargs)
            self._started = True
        register_ray()
        return super()._parallel()

    def shutdown(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
