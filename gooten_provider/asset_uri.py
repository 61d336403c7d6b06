"""The ``gooten`` asset URI scheme: ``gooten://orders`` stands for a Gooten account's orders.

No Airflow import here: Airflow's ProvidersManager imports :func:`normalize_gooten_uri` (registered as the
scheme's ``asset-uris`` handler in ``get_provider_info``), and the webhook relay, which runs outside
Airflow, needs :data:`ORDERS_URI` to find the asset through Airflow's REST API.
"""

from __future__ import annotations

from urllib.parse import SplitResult

#: The URI scheme the provider registers.
SCHEME = "gooten"
#: The resources a ``gooten://`` URI may name (the host part of the URI).
RESOURCES: tuple[str, ...] = ("orders",)
#: The asset of every order of the Gooten account: each webhook becomes an event on it.
ORDERS_URI = "gooten://orders"


def normalize_gooten_uri(parts: SplitResult) -> SplitResult:
    """Return the normal form of a ``gooten://`` URI: ``gooten://orders`` (lower case, nothing else).

    Airflow calls it with the URI already split, scheme lowered and trailing slashes removed
    (``gooten://Orders/`` arrives as host ``Orders``, path ``/``).

    :raises ValueError: the URI names no known resource, or has a path, query, user or port; Airflow
        reports it as an invalid asset URI when the DAG is parsed.
    """
    resource = (parts.hostname or "").lower()
    if resource not in RESOURCES:
        raise ValueError(
            f"Invalid Gooten asset URI {parts.geturl()!r}: use {ORDERS_URI!r} "
            f"(known resources: {', '.join(RESOURCES)})."
        )
    if parts.path not in ("", "/") or parts.query or parts.username or parts.port is not None:
        raise ValueError(
            f"Invalid Gooten asset URI {parts.geturl()!r}: it takes no path, query, user or port; "
            f"use {ORDERS_URI!r}."
        )
    return SplitResult(SCHEME, resource, "", "", "")
