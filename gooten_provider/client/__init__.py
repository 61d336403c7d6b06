"""The Gooten API client layer: settings, request core, retry policy, pacer and two transports. No Airflow.

:class:`GootenClient` (``requests``, threads) and :class:`AsyncGootenClient` (``httpx``, an event loop)
are imported on first use, so that the hook can read :class:`ClientSettings` at DAG parse without loading
an HTTP library.

Example::

    with GootenClient(recipe_id, billing_key) as client:
        client.get_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4")  # ['New', 'New']
        client.update_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4", "hold")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gooten_provider.client.core import ORDER_PATH, ORDER_SEARCH_PATH, ORDER_STATUS_PATH
from gooten_provider.client.settings import ClientSettings

if TYPE_CHECKING:
    from gooten_provider.client.async_client import AsyncGootenClient
    from gooten_provider.client.sync_client import SEARCH_FILTERS, GootenClient, SearchPage

__all__ = [
    "ORDER_PATH",
    "ORDER_SEARCH_PATH",
    "ORDER_STATUS_PATH",
    "SEARCH_FILTERS",
    "AsyncGootenClient",
    "ClientSettings",
    "GootenClient",
    "SearchPage",
]

_LAZY = {
    "GootenClient": "gooten_provider.client.sync_client",
    "SEARCH_FILTERS": "gooten_provider.client.sync_client",
    "SearchPage": "gooten_provider.client.sync_client",
    "AsyncGootenClient": "gooten_provider.client.async_client",
}


def __getattr__(name: str) -> Any:
    """Import a transport on first use (PEP 562): the HTTP libraries load only when a client is wanted."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
