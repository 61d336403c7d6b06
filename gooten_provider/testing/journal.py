"""The local API's journal: one entry per request handled, for tests and benchmarks to assert on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request the local API handled. Never holds the billing key or the raw query string."""

    #: HTTP method, e.g. ``"POST"``.
    method: str
    #: Request path as sent, without the query string.
    path: str
    #: The ``id`` query parameter, if any.
    order_id: str | None
    #: ``orderStatusName`` as sent (``POST /api/orderstatus`` only).
    target_status: str | None
    #: How ``partnerBillingKey`` decoded: ``"ok"``, ``"missing"``, ``"mismatch"`` or ``"not_required"``
    #: (a :class:`~gooten_provider.testing.routes.KeyCheck`).
    key_check: str
    #: ``"ok"``, ``"missing"`` or ``"invalid"`` (a :class:`~gooten_provider.testing.routes.RecipeCheck`).
    recipe_check: str
    #: The :class:`~gooten_provider.testing.faults.FaultKind` value injected, or ``None``.
    fault: str | None
    #: Whether a status change was applied to the store.
    applied: bool
    #: ``"updated"``, ``"cancelled"`` (items, by ``orderCancel``), ``"unknown_item"``, ``"ineligible"``,
    #: ``"unknown_order"``, ``"bad_status"``, ``"invalid_recipe"``,
    #: ``"bad_key"``, ``"bad_request"``, ``"read"``, ``"search"``, ``"admin_page"``, ``"admin_status"``,
    #: ``"admin_journal"``,
    #: ``"not_found"``, ``"throttled"`` (answered 429 by the rate limit; :attr:`fault` is ``None``), or the
    #: fault name when a fault replaced the reply (``slow`` and ``lost_response`` keep the real outcome).
    outcome: str
    #: Increments per accepted TCP connection (keeps increasing across restarts).
    connection_id: int
    #: ``time.monotonic()`` when the request had been read.
    started: float
    #: ``time.monotonic()`` when the reply was written, or when a fault ended the request.
    finished: float
    #: The ``page`` asked for (``GET /api/ordersearch`` only; 1 when not given), else ``None``.
    page: int | None = None
    #: The order-item ids this request cancelled (``PUT /api/orderCancel`` applied), else empty.
    cancelled_items: tuple[int, ...] = ()

    @property
    def duration(self) -> float:
        """Seconds between :attr:`started` and :attr:`finished`."""
        return self.finished - self.started

    @property
    def throttled(self) -> bool:
        """Whether the rate limit answered this request 429 (nothing was applied; no fault was drawn)."""
        return self.outcome == "throttled"
