"""What the relay keeps of one of Gooten's webhooks: an :class:`OrderChange`, or a :class:`WebhookRefused`.

Gooten POSTs the whole order JSON (addresses, names, e-mails, prices, ...) to the registered URL with
``?orderid=<id>`` appended. The relay keeps only what a pipeline needs to know that an order changed:
the order id, Gooten's NiceId, each item's status, and when the webhook arrived. Nothing else of the body
is stored, logged or sent to Airflow, so no address or name reaches Airflow's database or UI.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gooten_provider.order_ids import SAFE_ID_EXAMPLE, SAFE_ID_PATTERN
from gooten_provider.statuses import canonical_status

#: The largest body accepted; a Gooten order JSON is a few KiB.
MAX_BODY_BYTES = 1024 * 1024
#: The deepest nesting of objects and lists accepted; a Gooten order JSON is about 5 levels deep.
MAX_NESTING = 32
#: The longest item status and NiceId kept.
MAX_NAME_LENGTH = 64
#: An item status: letters, digits, spaces, hyphens and underscores (Gooten's are single words). Free text
#: (a name, an address) would be personal data in Airflow's database.
STATUS_PATTERN = re.compile(rf"[A-Za-z0-9 _-]{{1,{MAX_NAME_LENGTH}}}", re.ASCII)


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


def _unreadable(order: dict[str, Any], body: bytes) -> WebhookRefused | None:
    """A refusal for JSON nested too deeply or holding a string that SQLite, logs and Airflow cannot take.

    Deeper than :data:`MAX_NESTING`, or a string (key or value) with NUL or a lone surrogate; else ``None``.
    An iterative walk (no recursion for a hostile body), skipped where the body's bytes already rule both
    out, as they do for an ordinary order JSON: NUL and surrogates come only from backslash-u escapes or
    non-ASCII bytes, and JSON with fewer brackets than the limit cannot nest deeper.
    """
    plain_text = body.isascii() and b"\\u" not in body and b"\x00" not in body
    if plain_text and body.count(b"{") + body.count(b"[") <= MAX_NESTING:
        return None
    stack: list[tuple[object, int]] = [(order, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_NESTING:
            return _too_deep()
        children: Any = [*current.keys(), *current.values()] if isinstance(current, dict) else current
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif not plain_text and isinstance(child, str) and ("\x00" in child or not _encodable(child)):
                return WebhookRefused(
                    400,
                    "unreadable_characters",
                    "The order JSON holds a NUL character or a lone surrogate (an unpaired "
                    "\\ud800-\\udfff escape); Gooten sends UTF-8 text.",
                )
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep() -> WebhookRefused:
    return WebhookRefused(
        400,
        "nested_too_deeply",
        f"The body's JSON nests objects and lists more than {MAX_NESTING} levels deep; a Gooten order JSON "
        "is a few levels deep.",
    )


def _order_object(body: bytes, order_id_param: str | None) -> dict[str, Any]:
    """The body as a JSON object, once ``orderid`` is given.

    :raises WebhookRefused: no ``orderid``; a body that is not JSON, not an object, nested too deeply, or
        holding NUL or a lone surrogate.
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
    except RecursionError:  # deeper than the parser goes: far beyond MAX_NESTING
        raise _too_deep() from None
    if not isinstance(order, dict):
        raise WebhookRefused(
            400,
            "not_an_object",
            f"The body is JSON but not an object (a {type(order).__name__}); "
            "Gooten sends the order as a JSON object.",
        )
    unreadable = _unreadable(order, body)
    if unreadable is not None:
        raise unreadable
    return order


def _order_id(order: dict[str, Any], order_id_param: str | None) -> str:
    """The order JSON's ``Id``: a Safe ID, the one of the URL's ``orderid``."""
    order_id = order.get("Id")
    if not isinstance(order_id, str) or not order_id.strip():
        raise WebhookRefused(
            422, "no_order_id_in_body", "The order JSON has no 'Id' (Gooten's order id, a string)."
        )
    if not SAFE_ID_PATTERN.fullmatch(order_id):
        raise WebhookRefused(
            422,
            "order_id_not_safe_id",
            f"The order JSON's Id {_shown(order_id)} is not a Gooten Safe ID: the order number, a dash and "
            f"a GUID, such as '{SAFE_ID_EXAMPLE}'.",
        )
    if order_id != order_id_param:
        raise WebhookRefused(
            422,
            "order_id_mismatch",
            f"The order JSON's Id {_shown(order_id)} does not match orderid {_shown(order_id_param)} "
            "of the URL.",
        )
    return order_id


def _item_statuses(order: dict[str, Any]) -> list[str]:
    """Each item's status, stripped; every one a status name."""
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
    stripped = [str(status).strip() for status in statuses]
    bad = next((status for status in stripped if not STATUS_PATTERN.fullmatch(status)), None)
    if bad is not None:
        raise WebhookRefused(
            422,
            "bad_item_status",
            f"The item status {_shown(bad)} is not a status name: at most {MAX_NAME_LENGTH} letters, digits, "
            "spaces, hyphens or underscores (Gooten's are words such as 'InProduction').",
        )
    return stripped


def parse_order_change(body: bytes, order_id_param: str | None, received_at: datetime) -> OrderChange:
    """Read an order change from a webhook's body and its ``orderid`` query parameter.

    Everything kept is checked before it is stored: an ``Id`` of Gooten's Safe ID shape, item statuses of
    at most 64 letters, digits, spaces, hyphens or underscores, a NiceId of at most 64 printable
    characters; and the whole JSON nests at most :data:`MAX_NESTING` levels and has no NUL or lone
    surrogate in any string.

    :raises WebhookRefused: no ``orderid``, a body that is not a JSON object (or is nested too deeply, or
        holds NUL or a lone surrogate), or an order JSON without a Safe ID ``Id`` matching ``orderid``,
        without a valid status for each item, or with a NiceId that is not a short printable string.
    """
    order = _order_object(body, order_id_param)
    order_id = _order_id(order, order_id_param)
    stripped = _item_statuses(order)
    nice_id = order.get("NiceId")
    if isinstance(nice_id, str) and not (len(nice_id) <= MAX_NAME_LENGTH and nice_id.isprintable()):
        raise WebhookRefused(
            422,
            "bad_nice_id",
            f"The order JSON's NiceId is not a short reference: at most {MAX_NAME_LENGTH} printable "
            "characters (Gooten's are such as 'Richa13-cd4').",
        )
    return OrderChange(
        order_id=order_id,
        nice_id=nice_id if isinstance(nice_id, str) and nice_id else None,
        item_statuses=tuple(canonical_status(status) for status in stripped),
        received_at=received_at.astimezone(UTC),
    )
