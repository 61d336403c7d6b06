"""The Gooten hook: an Airflow connection turned into a :class:`~gooten_provider.client.GootenClient`."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook, mask_secret

from gooten_provider.client.billing_key import billing_key_forms
from gooten_provider.client.settings import CONNECTION_EXTRAS, ClientSettings
from gooten_provider.exceptions import GootenConfigurationError
from gooten_provider.get_provider_info import CONNECTION_TYPE
from gooten_provider.hooks.connection_lookup import not_found_hint

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection

    from gooten_provider.client import GootenClient
    from gooten_provider.client.async_client import AsyncGootenClient
    from gooten_provider.client.shared_store import FallbackPaceStore
    from gooten_provider.order_cancel_decision import CancelPlan


def _mask_all(forms: Iterable[str]) -> None:
    """Register every form of the key with Airflow's secret masker (may call the supervisor: sync)."""
    for form in forms:
        mask_secret(form)


#: Extras the hook reads itself (the client's are :data:`~gooten_provider.client.settings.CONNECTION_EXTRAS`).
_HOOK_EXTRAS = ("rate_limit_conn_id", "admin_order_url")


class GootenHook(BaseHook):
    """Talk to the Gooten order API with the credentials of an Airflow connection.

    The connection (type ``gooten``) holds the Recipe ID in ``login``, the Partner Billing Key in
    ``password`` (store it unencoded; Airflow masks it), an optional API base URL in ``host`` (default
    ``https://api.print.io``) and ``port``, and the optional extras ``timeout`` (seconds, default 30),
    ``max_retries`` (default 3), ``backoff_factor`` (default 0.5), ``adaptive_rate`` (default true),
    ``throttle_timeout`` (seconds, default 300), ``rate_limit_conn_id`` and ``admin_order_url``. The
    connection is read on first use, never in ``__init__``; one pooled HTTP session then serves every call
    of this hook, from any thread.

    Every form of the billing key (raw, URL-encoded once, encoded twice) is registered with Airflow's secret
    masker, and no URL or ``requests`` error text is ever logged or raised.

    :param gooten_conn_id: the Airflow connection id.
    :param timeout: overrides the connection's ``timeout`` extra.
    :param max_retries: overrides the connection's ``max_retries`` extra.
    :param backoff_factor: overrides the connection's ``backoff_factor`` extra (retry delays grow as
        ``backoff_factor * 2**n`` seconds, plus jitter; default 0.5).
    :param pool_maxsize: connections kept open; at least the number of threads sharing this hook.
    :param requests_per_second: an optional cap on this hook's request rate, across threads.
    :param adaptive_rate: overrides the connection's ``adaptive_rate`` extra: pace requests at a rate learnt
        from Gooten's 429s (see :class:`~gooten_provider.client.GootenClient`).
    :param throttle_timeout: overrides the connection's ``throttle_timeout`` extra.
    :param rate_limit_conn_id: overrides the connection's ``rate_limit_conn_id`` extra: the id of an Airflow
        connection of type ``redis`` where every task on this Gooten account shares one pace (see
        docs/reference.md, "Throttling"); ``""`` turns a shared pace set in the extra off.

    Example::

        hook = GootenHook()
        hook.get_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4")  # ['New']
        hook.update_order_status("115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4", "Hold")
    """

    conn_name_attr = "gooten_conn_id"
    default_conn_name = "gooten_default"
    conn_type = "gooten"
    hook_name = "Gooten"

    def __init__(
        self,
        gooten_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        backoff_factor: float | None = None,
        pool_maxsize: int | None = None,
        requests_per_second: float | None = None,
        adaptive_rate: bool | None = None,
        throttle_timeout: float | None = None,
        rate_limit_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rate_limit_conn_id = rate_limit_conn_id
        self.adaptive_rate = adaptive_rate
        self.throttle_timeout = throttle_timeout
        self.gooten_conn_id = gooten_conn_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.pool_maxsize = pool_maxsize
        self.requests_per_second = requests_per_second
        self._client: GootenClient | None = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> GootenClient:
        """The client built from the connection on first use (one per hook, even across threads)."""
        with self._client_lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> GootenClient:
        from gooten_provider.client import GootenClient  # the HTTP stack loads at run time, not at DAG parse

        conn = self._connection
        settings = self._client_settings(conn, conn.extra_dejson)
        client = GootenClient(settings=settings, pace_store=self._pace_store(conn.extra_dejson, settings))
        for form in client.secret_forms:  # a key stored encoded is sent decoded: mask that form too
            mask_secret(form)
        return client

    async def get_async_client(self) -> AsyncGootenClient:
        """A new :class:`~gooten_provider.async_client.AsyncGootenClient` for an event loop.

        For triggers: the connection is read with the async-safe accessors of common-compat (a secrets
        backend or the triggerer's supervisor may be a network call) and secrets are masked from a worker
        thread, so the triggerer's event loop never blocks. The caller closes it (``async with``).
        """
        # imported here: only a triggerer needs them, and every DAG parse imports this module
        from airflow.providers.common.compat.connection import get_async_extra_dejson
        from asgiref.sync import sync_to_async

        conn = await self._aconnection()
        extras = await get_async_extra_dejson(conn)

        def build() -> AsyncGootenClient:
            # In a worker thread: the first import of the HTTP stack, the TLS context httpx loads (CA
            # certificates, about 0.1 s) and secret masking (may call the supervisor) would block the loop.
            from gooten_provider.client.async_client import AsyncGootenClient

            settings = self._client_settings(conn, extras)
            client = AsyncGootenClient(settings=settings, pace_store=self._pace_store(extras, settings))
            _mask_all(client.secret_forms)
            return client

        return await sync_to_async(build)()

    async def _aconnection(self) -> Connection:
        from airflow.providers.common.compat.connection import get_async_connection

        try:
            return await get_async_connection(self.gooten_conn_id, self)
        except AirflowNotFoundException as exc:
            raise AirflowNotFoundException(f"{exc}. {not_found_hint(self.gooten_conn_id)}") from None

    def _client_settings(self, conn: Connection, extras: Any) -> ClientSettings:
        """The client's settings: each of this hook's arguments, else the connection's extra, else default.

        The checks are :class:`~gooten_provider.client.settings.ClientSettings`'s; the key is masked first.
        """
        login, password = (conn.login or "").strip(), (conn.password or "").strip()
        missing = [
            name
            for name, value in (("login (Recipe ID)", login), ("password (Partner Billing Key)", password))
            if not value
        ]
        if missing:
            raise GootenConfigurationError(
                f"Gooten connection {self.gooten_conn_id!r} has no {' and no '.join(missing)}: set both in "
                f"the connection (Admin > Connections, or AIRFLOW_CONN_{self.gooten_conn_id.upper()})."
            )
        _mask_all(billing_key_forms(password))
        if not isinstance(extras, dict):
            raise GootenConfigurationError(
                f"Gooten connection {self.gooten_conn_id!r}: the extra must be a JSON object such as "
                f'{{"timeout": 30, "max_retries": 3}}, got a JSON {type(extras).__name__}.'
            )
        known = (*CONNECTION_EXTRAS, *_HOOK_EXTRAS)
        unknown = sorted(set(extras) - set(known))
        if unknown:
            self.log.warning(
                "Gooten connection %r: ignoring unknown extra(s) %s; known extras: %s.",
                self.gooten_conn_id,
                ", ".join(unknown),
                ", ".join(known),
            )
        arguments = {
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "backoff_factor": self.backoff_factor,
            "adaptive_rate": self.adaptive_rate,
            "throttle_timeout": self.throttle_timeout,
            "pool_maxsize": self.pool_maxsize,
            "requests_per_second": self.requests_per_second,
        }
        return ClientSettings.merged(
            recipe_id=login,
            billing_key=password,
            base_url=conn.host,
            port=conn.port,
            arguments=arguments,
            extras=extras,
            extras_from=f"Gooten connection {self.gooten_conn_id!r}",
        )

    def _pace_store(self, extras: Any, settings: ClientSettings) -> FallbackPaceStore | None:
        """The shared pace in the Redis of ``rate_limit_conn_id`` (the argument, else the extra), or None."""
        conn_id = self.rate_limit_conn_id
        if conn_id is None and isinstance(extras, dict):
            conn_id = str(extras.get("rate_limit_conn_id") or "").strip()
        if not conn_id:
            return None
        from gooten_provider.hooks.rate_limit_connection import shared_pace_from_connection

        try:
            conn = self.get_connection(conn_id)
        except AirflowNotFoundException as exc:
            raise AirflowNotFoundException(
                f"{exc}. It is the Redis connection of the shared pace (rate_limit_conn_id of Gooten "
                f"connection {self.gooten_conn_id!r}): add a connection of type redis with that id, or "
                "unset rate_limit_conn_id."
            ) from None
        store = shared_pace_from_connection(conn, settings.recipe_id)
        self.log.info(
            "Requests to Gooten share one pace with every task of this account, through %s "
            "(rate_limit_conn_id %r).",
            store.primary.description,
            conn_id,
        )
        return store

    def get_conn(self) -> GootenClient:
        """Return the :class:`GootenClient` of this hook."""
        return self.client

    @cached_property
    def _connection(self) -> Connection:
        """The Airflow connection, looked up once per hook (a secrets backend may be a network call)."""
        try:
            return self.get_connection(self.gooten_conn_id)
        except AirflowNotFoundException as exc:  # Airflow says only "isn't defined": add why and what to do
            raise AirflowNotFoundException(f"{exc}. {not_found_hint(self.gooten_conn_id)}") from None

    @property
    def admin_order_url(self) -> str | None:
        """The connection's ``admin_order_url`` link template, if set."""
        return self._connection.extra_dejson.get("admin_order_url") or None

    def get_order(self, order_id: str) -> dict[str, Any]:
        """Return one order as Gooten describes it (``Id``, ``NiceId``, ``Items[]`` with ``Status``, ...)."""
        return self.client.get_order(order_id)

    def get_order_status(self, order_id: str) -> list[str]:
        """Return the status of each item of the order (Gooten keeps no order-level status)."""
        return self.client.get_order_status(order_id)

    def update_order_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Change the status of every item of an order; see :meth:`GootenClient.update_order_status`.

        :raises ValueError: invalid order id or status, before any request.
        :raises GootenApiError: Gooten or the network failed; ``GootenOutcomeUnknownError`` when the change
            may have been applied.
        """
        return self.client.update_order_status(order_id, status)

    def cancel_order_items(self, order_id: str, item_ids: Iterable[object] | None = None) -> CancelPlan:
        """Cancel items of an order (all when ``item_ids`` is None): :meth:`GootenClient.cancel_order_items`.

        One read (for the GootenId and the order-item ids), then at most one ``PUT /api/orderCancel``;
        returns the :class:`~gooten_provider.order_cancel_decision.CancelPlan` it followed (``to_send``
        were sent, ``already_cancelled`` were not).

        :raises ValueError: invalid order id or item ids, before any request.
        :raises GootenApiError: unknown item ids (``GootenOrderItemsError``) or items in a status no
            cancellation is allowed from (``GootenItemsNotCancellableError``), both before any write;
            Gooten's refusal; ``GootenOutcomeUnknownError`` when the cancellation may have been applied.
        """
        return self.client.cancel_order_items(order_id, item_ids)

    def send_item_cancellation(
        self, gooten_id: int, item_ids: Sequence[int], *, order_id: str | None = None
    ) -> dict[str, Any]:
        """Send one ``PUT /api/orderCancel``, no read first; see :meth:`GootenClient.send_item_cancellation`.

        The write step of a cancellation already decided from a read order (a batch engine's), with the
        same errors as :meth:`cancel_order_items`.
        """
        return self.client.send_item_cancellation(gooten_id, item_ids, order_id=order_id)

    def search_orders(
        self, *, page_size: int = 100, **filters: str | dt.date | None
    ) -> Iterator[dict[str, Any]]:
        """Yield every order matching the filters, page after page; see :meth:`GootenClient.search_orders`."""
        return self.client.search_orders(page_size=page_size, **filters)

    def test_connection(self) -> tuple[bool, str]:
        """Check the Recipe ID and the billing key with one read-only call (an order search of one)."""
        try:
            self.client.check_credentials()
        except Exception as exc:
            return False, str(exc)
        return (
            True,
            f"Connected to the Gooten API at {self.client.base_url}: Recipe ID and billing key accepted.",
        )

    # Airflow < 3.2 renders the connection form from these methods; both derive from get_provider_info().

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form's hidden, relabelled and placeholder fields (Airflow < 3.2)."""
        behaviour = CONNECTION_TYPE["ui-field-behaviour"]
        return {
            "hidden_fields": list(behaviour["hidden-fields"]),
            "relabeling": dict(behaviour["relabeling"]),
            "placeholders": dict(behaviour["placeholders"]),
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extra fields as WTForms fields (Airflow < 3.2)."""
        from wtforms import BooleanField, IntegerField, StringField
        from wtforms.validators import NumberRange, Optional

        widgets: dict[str, Any] = {}
        for name, field in CONNECTION_TYPE["conn-fields"].items():
            schema = field["schema"]
            if "boolean" in schema["type"]:
                widgets[name] = BooleanField(field["label"], default=True, description=field["description"])
            elif "integer" in schema["type"]:
                validators = [Optional(), NumberRange(min=schema.get("minimum"), max=schema.get("maximum"))]
                widgets[name] = IntegerField(
                    field["label"], validators=validators, description=field["description"]
                )
            else:  # Airflow < 3.2 has no float field: a number is typed as text and parsed by the hook
                widgets[name] = StringField(field["label"], description=field["description"])
        return widgets
