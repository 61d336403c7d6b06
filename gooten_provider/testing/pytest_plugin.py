"""Pytest fixtures that run a local Gooten API for each test (registered as the ``gooten_api`` plugin).

Installed with the provider through the ``pytest11`` entry point, so this module is imported by every
pytest run of anyone who installs it: it imports nothing but pytest at module level, and the server
only when a fixture is used.

``gooten_api``
    A started :class:`~gooten_provider.testing.GootenApiServer` with default settings. The
    ``gooten_default`` Airflow connection (``AIRFLOW_CONN_GOOTEN_DEFAULT``) points at it for the test.

``gooten_api_factory``
    A callable taking the keyword arguments of ``GootenApiServer`` and returning a started server;
    the ``gooten_default`` connection points at the most recent one. Every server is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gooten_provider.testing.server import GootenApiServer


def _point_connection_at(server: GootenApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in server.connection_env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def gooten_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[GootenApiServer]:
    """Run a local Gooten API for one test and point the ``gooten_default`` connection at it."""
    from gooten_provider.testing.server import GootenApiServer

    server = GootenApiServer().start()
    try:
        _point_connection_at(server, monkeypatch)
        yield server
    finally:
        server.stop()


@pytest.fixture
def gooten_api_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., GootenApiServer]]:
    """Return a callable that starts a local Gooten API with the given settings.

    The ``gooten_default`` connection points at the server started last; all are stopped at teardown.
    """
    from gooten_provider.testing.server import GootenApiServer

    servers: list[GootenApiServer] = []

    def start(**kwargs: Any) -> GootenApiServer:
        server = GootenApiServer(**kwargs)
        servers.append(server)
        server.start()
        _point_connection_at(server, monkeypatch)
        return server

    try:
        yield start
    finally:
        for server in reversed(servers):
            server.stop()
