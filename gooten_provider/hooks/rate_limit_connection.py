"""``rate_limit_conn_id``: an Airflow connection of type ``redis`` turned into the account's shared pace.

The connection holds the Redis server in ``host`` and ``port`` (default 6379), an optional ``login``
(Redis 6 ACL user) and ``password``, and the extras ``db`` (default 0), ``ssl`` (TLS, default false) and
``ssl_ca_certs`` (a CA bundle for TLS) — the fields of the redis provider's connection, so the same
connection (or the Celery broker's Redis) serves. Its password is masked in task logs. The ``redis``
package comes with ``pip install "airflow-provider-gooten[redis]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import mask_secret

from gooten_provider.exceptions import GootenConfigurationError

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection

    from gooten_provider.client.shared_store import FallbackPaceStore

DEFAULT_REDIS_PORT = 6379
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


def _flag(value: Any, name: str, conn_id: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value if value is not None else "").strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise GootenConfigurationError(
        f"Redis connection {conn_id!r} (rate_limit_conn_id): extra {name!r} must be true or false, "
        f"got {value!r}."
    )


def _db(value: Any, conn_id: str) -> int:
    try:
        number = float(value if value not in (None, "") else 0)
    except (TypeError, ValueError):
        number = -1.0
    if not number.is_integer() or not 0 <= number <= 15:  # Redis has databases 0-15 by default
        raise GootenConfigurationError(
            f"Redis connection {conn_id!r} (rate_limit_conn_id): extra 'db' must be a whole number from "
            f"0 to 15, got {value!r}."
        )
    return int(number)


def check_rate_limit_conn_id(value: Any, task_id: str) -> str | None:
    """An operator's ``rate_limit_conn_id`` as given, checked when the DAG is parsed.

    :raises ValueError: it is neither a connection id (text) nor ``None``.
    """
    if value is not None and not isinstance(value, str):
        raise ValueError(
            f"{task_id}: rate_limit_conn_id must be a connection id (text) or None, got {value!r}."
        )
    return value


def shared_pace_from_connection(conn: Connection, recipe_id: str) -> FallbackPaceStore:
    """The pace store of the account ``recipe_id`` in the Redis the connection names.

    Opens no connection yet: an unreachable Redis shows at the first request (the client then paces
    itself, :class:`~gooten_provider.client.shared_store.FallbackPaceStore`), never here.

    :raises GootenConfigurationError: the connection is not a Redis one, has no host, holds a bad ``db``
        or ``ssl``, or the ``redis`` package is missing.
    """
    conn_id = conn.conn_id
    if (conn.conn_type or "redis") != "redis":
        raise GootenConfigurationError(
            f"rate_limit_conn_id {conn_id!r} is a connection of type {conn.conn_type!r}; it must be of type "
            "'redis' (host, port, password, extra db and ssl)."
        )
    if not (conn.host or "").strip():
        raise GootenConfigurationError(
            f"Redis connection {conn_id!r} (rate_limit_conn_id) has no host: set the Redis server's host."
        )
    try:
        import redis  # noqa: F401 - checked here, so the error says what to install

        from gooten_provider.client.redis_store import RedisPaceStore
        from gooten_provider.client.shared_store import FallbackPaceStore
    except ImportError:
        raise GootenConfigurationError(
            f"rate_limit_conn_id {conn_id!r} needs the redis package: "
            'pip install "airflow-provider-gooten[redis]".'
        ) from None
    if conn.password:
        mask_secret(conn.password)
    extras = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
    store = RedisPaceStore.connect(
        recipe_id,
        host=(conn.host or "").strip(),
        port=int(conn.port or DEFAULT_REDIS_PORT),
        username=conn.login or None,
        password=conn.password or None,
        db=_db(extras.get("db"), conn_id),
        ssl=_flag(extras.get("ssl"), "ssl", conn_id),
        ssl_ca_certs=extras.get("ssl_ca_certs") or None,
    )
    return FallbackPaceStore(store)
