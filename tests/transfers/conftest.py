"""Fixtures of the export tests: a local Gooten API with fast retries, and what its journal tells."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from gooten_provider.testing import GootenApiServer
from tests.operators.conftest import point_connection_at

FIRST_DAY = dt.date(2025, 3, 1)
DAYS = 5


def created_on(api: GootenApiServer, ids: list[str], first: dt.date, last: dt.date) -> list[str]:
    """The ids of the orders created from ``first`` to ``last`` (both included), in creation order."""
    return [i for i in ids if first <= dt.date.fromisoformat(api.order(i)["CreatedAt"][:10]) <= last]


def search_requests(api: GootenApiServer) -> list[Any]:
    """The journal's order searches."""
    return [entry for entry in api.journal if entry.page is not None]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[GootenApiServer]:
    """A local Gooten API with fast retries; ``gooten_default`` points at it."""
    with GootenApiServer(retry_after=0.05) as server:
        point_connection_at(server, monkeypatch)
        yield server
