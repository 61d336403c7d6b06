"""Cancel the items of Gooten orders from an Airflow task (``PUT /api/orderCancel``): held orders included."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from gooten_provider.batch.item_cancel import CANCELLED_TARGET
from gooten_provider.operators.gooten import (
    ActionFactory,
    GootenOrderBatchOperator,
    Wording,
    _Plan,
)
from gooten_provider.order_ids import is_template
from gooten_provider.order_items import normalize_item_ids

#: Item ids for one order: ``None`` for every item of it.
ItemIds = tuple[int, ...] | None


def _read_text(text: str, task_id: str) -> object:
    """A mapping rendered as text: JSON, or a Python literal (what Jinja renders of a dict)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ValueError(
            f"{task_id}: item_ids: {text!r} is neither a JSON object nor a dict literal. Give a mapping of "
            "order id to its order-item ids, such as {'115557-b5c9...': [200101, 200102]}, or None for "
            "every item."
        ) from None


def _as_mapping(item_ids: object, task_id: str) -> Mapping[object, object] | None:
    """The rendered ``item_ids`` as a mapping (text read as JSON or a literal), or ``None`` for every item."""
    if isinstance(item_ids, str):
        text = item_ids.strip()
        if text.casefold() in ("", "none", "null"):
            return None
        item_ids = _read_text(text, task_id)
    if item_ids is None or isinstance(item_ids, Mapping):
        return item_ids
    raise ValueError(
        f"{task_id}: item_ids must map each order id (Safe ID) to the order-item ids to cancel (a list, or "
        f"None for every item of that order), or be None for every item of every order; got "
        f"{type(item_ids).__name__} {item_ids!r}."
    )


def _ids_of_order(order_id: str, ids: object, task_id: str) -> ItemIds:
    try:
        return normalize_item_ids(ids)  # type: ignore[arg-type]  # checked there: anything else is refused
    except ValueError as exc:
        raise ValueError(f"{task_id}: item_ids of order {order_id}: {exc}") from None


def parse_item_ids(item_ids: object, *, task_id: str) -> dict[str, ItemIds] | None:
    """``item_ids`` keyed by case-folded order id, each order's ids checked; ``None`` for every item.

    :raises ValueError: not a mapping (nor ``None``), an order named twice, or ids that are not order-item
        ids (an empty list included).
    """
    mapping = _as_mapping(item_ids, task_id)
    if mapping is None:
        return None
    wanted: dict[str, ItemIds] = {}
    for key, ids in mapping.items():
        folded = str(key).strip().casefold()
        if folded in wanted:
            raise ValueError(f"{task_id}: item_ids names order {key} twice (letter case is ignored).")
        wanted[folded] = _ids_of_order(str(key), ids, task_id)
    return wanted


def item_ids_by_order(item_ids: object, order_ids: Sequence[str], *, task_id: str) -> dict[str, ItemIds]:
    """Check ``item_ids`` against the batch's orders; return it keyed by case-folded Safe ID.

    ``None`` (or a template that rendered nothing) cancels every item of every order: an empty dict. A
    mapping must name every order of ``order_ids`` and no other (letter case ignored), each with a non-empty
    list of order-item ids or ``None`` for every item of that order: an order left out is an error rather
    than every item of it cancelled, since a cancellation cannot be undone.

    :raises ValueError: a bad mapping, before any request; the message names the orders and what is allowed.
    """
    wanted = parse_item_ids(item_ids, task_id=task_id)
    if wanted is None:
        return {}
    given = {str(key).strip().casefold(): str(key).strip() for key in _as_mapping(item_ids, task_id) or {}}
    _require_same_orders(given, {order_id.casefold(): order_id for order_id in order_ids}, task_id)
    return wanted


def _require_same_orders(given: Mapping[str, str], in_batch: Mapping[str, str], task_id: str) -> None:
    """Both map case-folded order ids to the ids as written: item_ids' keys, and the batch's orders."""
    strangers = [order_id for folded, order_id in given.items() if folded not in in_batch]
    if strangers:
        raise ValueError(
            f"{task_id}: item_ids names order(s) not in order_ids: {_first(strangers)}. Give item ids only "
            "for the orders to cancel, or add these orders to order_ids."
        )
    missing = [order_id for folded, order_id in in_batch.items() if folded not in given]
    if missing:
        raise ValueError(
            f"{task_id}: item_ids has no entry for order(s) {_first(missing)}. Name every order of order_ids "
            "in item_ids, with None to cancel every item of an order (nothing is cancelled by default)."
        )


def _first(ids: Iterable[str], shown: int = 5) -> str:
    listed = list(ids)
    more = f" and {len(listed) - shown} more" if len(listed) > shown else ""
    return ", ".join(listed[:shown]) + more


class GootenCancelOrderItemsOperator(GootenOrderBatchOperator):
    """Cancel the items of Gooten orders (``PUT /api/orderCancel``), safely and in bulk: held orders too.

    A held order can no longer be changed by ``POST /api/orderstatus``, not even to ``Cancelled``; Gooten's
    item cancellation is the route left, allowed while the items are ``New``, ``Hold``, ``Pending``,
    ``ReadyForAccounting``, ``ReadyForImageDl``, ``NeedsManualApproval``, ``NeedsPersonalization`` or in an
    issue status (:data:`~gooten_provider.statuses.ITEM_CANCELLABLE_FROM_STATUSES`).

    Built on the same batch engine as :class:`~gooten_provider.operators.gooten.GootenOrderStatusOperator`,
    with the same arguments, records, XCom, ``results_path``, dry run, clean stop and retries. Each order is
    read first (its ``GootenId`` and order-item ids); then it ends ``unchanged`` when every wanted item is
    cancelled already, ``ineligible`` when a wanted item is in a status no cancellation is allowed from
    (nothing is sent; the error names the items and their statuses), and otherwise the items not cancelled
    yet are sent once: ``updated``. A cancellation whose answer is lost is settled by reading the order, and
    re-sent (only the items still not cancelled) when it shows it never landed: a cancelled item cannot be
    cancelled again, so a late landing makes Gooten refuse the re-send, never apply it twice. A record's
    ``status`` is ``Cancelled`` and its ``previous_statuses`` are the wanted items' statuses as read.

    :param order_ids: as for the status operator (one Safe ID or a list; templated; parsed the same way).
    :param item_ids: ``None`` (default) to cancel every item of every order, or a mapping of each order id
        of ``order_ids`` to the order-item ids to cancel (the ``OrderItemId`` of the item's images in GET
        order), with ``None`` for every item of that order, such as ``{"115557-b5c9...": [200101], "115558-
        ...": None}``; templated (rendered text is read as JSON or a dict literal). It must name every
        order of ``order_ids`` and no other: checked before any request. An id the order does not have
        fails that order, listing its ids; nothing of it is cancelled.
    :param dry_run: read every order and report what would happen, without cancelling; templated.
    :param reason: free text recorded with each record (Gooten has no field for it); templated.
    :param fail_on_ineligible: also fail the task when an order's items could not be cancelled any more.

    ``gooten_conn_id``, ``max_workers``, ``results_path``, ``requests_per_second``, ``throttle_timeout``,
    ``check_order_ids`` and ``rate_limit_conn_id`` are as for the status operator. See docs/reference.md,
    "Cancelling items".
    """

    template_fields: Sequence[str] = (
        "order_ids",
        "item_ids",
        "gooten_conn_id",
        "dry_run",
        "reason",
        "results_path",
        "rate_limit_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"order_ids": "json", "item_ids": "json"}
    ui_color = "#ffc9c9"

    def __init__(
        self,
        *,
        order_ids: str | Sequence[str] | Any,
        item_ids: Mapping[str, Sequence[int] | None] | str | Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(order_ids=order_ids, **kwargs)
        # a wrong literal fails when the DAG is parsed; a template or an XComArg is checked when rendered
        if isinstance(item_ids, (Mapping, list, tuple, set, int)) or (
            isinstance(item_ids, str) and not is_template(item_ids)
        ):
            parse_item_ids(item_ids, task_id=self.task_id)
        self.item_ids = item_ids

    def _target(self) -> str:
        return CANCELLED_TARGET

    def _prepare_action(self, plan: _Plan) -> ActionFactory:
        from gooten_provider.batch.item_cancel import ItemCancellation

        wanted = item_ids_by_order(self.item_ids, plan.order_ids, task_id=self.task_id)
        return lambda client: ItemCancellation(client, wanted)

    def _wording(self, target: str) -> Wording:
        del target  # always Cancelled
        return Wording(
            "have their items cancelled", "whose items are cancelled already", ": cancelling items"
        )
