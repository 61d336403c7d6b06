"""A local stand-in of the Gooten order API, for tests, demos and benchmarks.

:class:`GootenApiServer` is a real HTTP server on 127.0.0.1 that mimics ``https://api.print.io``
(``POST /api/orderstatus``, ``GET /api/v/{n}/source/{src}/orders``, ``GET /api/ordersearch``), keeps
orders in memory, can inject faults, and journals every request::

    import requests
    from gooten_provider.testing import GootenApiServer

    with GootenApiServer() as api:
        order_id = api.add_order(statuses=["New", "Pending"])["Id"]
        reply = requests.post(
            f"{api.base_url}/api/orderstatus",
            params={"recipeid": api.recipe_id, "partnerBillingKey": api.billing_key,
                    "id": order_id, "orderStatusName": "Hold"},
            timeout=5,
        )
        assert reply.json() == {"HadError": False}
        assert api.item_statuses(order_id) == ["Hold", "Hold"]

In pytest, the ``gooten_api`` fixture (installed with the provider) starts one for each test and
points the ``gooten_default`` Airflow connection at it. From a shell::

    python -m gooten_provider.testing --port 8089 --demo-orders

Names are imported lazily, so importing this package (as the pytest plugin does) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gooten_provider.testing.faults import FaultKind
    from gooten_provider.testing.server import (
        DEFAULT_BILLING_KEY,
        DEFAULT_RECIPE_ID,
        GootenApiServer,
        JournalEntry,
        PortUnavailableError,
    )

__all__ = [
    "DEFAULT_BILLING_KEY",
    "DEFAULT_RECIPE_ID",
    "FaultKind",
    "GootenApiServer",
    "JournalEntry",
    "PortUnavailableError",
]

_EXPORTS = {
    "DEFAULT_BILLING_KEY": "gooten_provider.testing.server",
    "DEFAULT_RECIPE_ID": "gooten_provider.testing.server",
    "GootenApiServer": "gooten_provider.testing.server",
    "JournalEntry": "gooten_provider.testing.server",
    "PortUnavailableError": "gooten_provider.testing.server",
    "FaultKind": "gooten_provider.testing.faults",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
