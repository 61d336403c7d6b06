"""What the relay keeps of one of Gooten's webhooks: an :class:`OrderChange`, or a :class:`WebhookRefused`.

Gooten POSTs the whole order JSON (addresses, names, e-mails, prices, ...) to the registered URL with
``?orderid=<id>`` appended. The relay keeps only what a pipeline needs to know that an order changed:
the order id, Gooten's NiceId, each item's status, and when the webhook arrived. Nothing else of the body
is stored, logged or sent to Airflow, so no address or name reaches Airflow's database or UI.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gooten_provider.statuses import canonical_status

#: The largest body accepted; a Gooten order JSON is a few KiB.
MAX_BODY_BYTES = 1024 * 1024


class WebhookRefused(Exception):
    """A webhook the relay refuses: nothing of it is stored or forwarded.

    :param status: the HTTP status answered.
    :param reason: a short name of the refusal, for logs and metrics (``wrong_token``, ``not_json``, ...).
    :param message: what was wrong and what is expected, answered as ``{"error": message}``.
    """

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def printable(text: str) -> str:
    """``text`` for a log line: as it is when printable, else its ``repr`` (no forged lines, no escapes)."""
    return text if text.isprintable() else repr(text)


def _shown(value: object, limit: int = 80) -> str:
    """A short ``repr`` of a value taken from the request, for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


@dataclass(frozen=True)
class OrderChange:
    """One accepted webhook: an order whose items are now in ``item_statuses``.

    :param order_id: Gooten's order id (the Safe ID, ``"1234-<uuid>"``).
    :param nice_id: Gooten's short order reference (``NiceId``), if the webhook had one.
    :param item_statuses: each item's status, in item order (Gooten keeps status per item).
    :param received_at: when the relay received the webhook, in UTC (Gooten sends no time of its own).
    :param change_id: a unique id of this change, so a consumer can tell a re-delivered event apart.
    """

    order_id: str
    nice_id: str | None
    item_statuses: tuple[str, ...]
    received_at: datetime
    change_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def event_extra(self) -> dict[str, Any]:
        """The asset event's ``extra``: the change, and nothing else of the order."""
        return {
            "change_id": self.change_id,
            "order_id": self.order_id,
            "nice_id": self.nice_id,
            "item_statuses": list(self.item_statuses),
            "received_at": self.received_at.isoformat(),
        }


def parse_order_change(body: bytes, order_id_param: str | None, received_at: datetime) -> OrderChange:
    """Read an order change from a webhook's body and its ``orderid`` query parameter.

    :raises WebhookRefused: no ``orderid``, a body that is not a JSON object, or an order JSON without
        an ``Id`` matching ``orderid`` or without a status for each item.
    """
    if not order_id_param or not order_id_param.strip():
        raise WebhookRefused(
            400,
            "no_order_id",
            "No orderid in the query string: the URL registered in the Gooten Admin must end with "
            "'?orderid=' (Gooten appends the order id).",
        )
    try:
        order = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WebhookRefused(
            400, "not_json", f"The body is not JSON ({error}); Gooten sends the order as a JSON object."
        ) from None
    if not isinstance(order, dict):
        raise WebhookRefused(
            400,
            "not_an_object",
            f"The body is JSON but not an object (a {type(order).__name__}); "
            "Gooten sends the order as a JSON object.",
        )
    order_id = order.get("Id")
    if not isinstance(order_id, str) or not order_id.strip():
        raise WebhookRefused(
            422, "no_order_id_in_body", "The order JSON has no 'Id' (Gooten's order id, a string)."
        )
    if order_id != order_id_param:
        raise WebhookRefused(
            422,
            "order_id_mismatch",
            f"The order JSON's Id {_shown(order_id)} does not match orderid {_shown(order_id_param)} "
            "of the URL.",
        )
    items = order.get("Items")
    statuses = (
        [item.get("Status") if isinstance(item, dict) else None for item in items]
        if isinstance(items, list)
        else []
    )
    if not statuses or not all(isinstance(status, str) and status.strip() for status in statuses):
        raise WebhookRefused(
            422,
            "no_item_statuses",
            "The order JSON has no 'Items' list with a 'Status' for each item "
            "(Gooten keeps status per item).",
        )
    nice_id = order.get("NiceId")
    return OrderChange(
        order_id=order_id,
        nice_id=nice_id if isinstance(nice_id, str) and nice_id else None,
        item_statuses=tuple(canonical_status(str(status).strip()) for status in statuses),
        received_at=received_at.astimezone(UTC),
    )
