"""The wire part of an item cancellation: ``PUT /api/orderCancel?orderId=<GootenId>`` with ``{"Ids": [...]}``.

Built by the same :class:`~gooten_provider.client.core.RequestCore` as every call (Recipe ID, billing key
handed raw to the HTTP library, redacted messages) and sent by either client through the same retry policy
and pacer: a write, so it is never sent again once it may have reached Gooten, and Gooten's refusal in a
200 body (``"HadError": true``) is raised with Gooten's reason. What to send is decided without I/O by
:mod:`gooten_provider.order_cancel_decision`.
"""

from __future__ import annotations

from collections.abc import Sequence

from gooten_provider.client.core import GootenRequest, RequestCore
from gooten_provider.order_items import name_ids, normalize_item_ids

ORDER_CANCEL_PATH = "/api/orderCancel"


def order_cancel_request(
    core: RequestCore, gooten_id: int, item_ids: Sequence[int], *, order_id: str | None = None
) -> GootenRequest:
    """The request cancelling ``item_ids`` of the order whose numeric id is ``gooten_id``.

    :param order_id: the order's Safe ID, named in messages when known.
    :raises ValueError: ``gooten_id`` is not a positive whole number, or ``item_ids`` is not a non-empty
        list of order-item ids; nothing is sent.
    """
    if isinstance(gooten_id, bool) or not isinstance(gooten_id, int) or gooten_id <= 0:
        raise ValueError(
            f"Invalid GootenId {gooten_id!r}: orderCancel takes the order's numeric GootenId "
            "(from GET order)."
        )
    ids = normalize_item_ids(item_ids)
    if ids is None:  # "every item" is the decision's to resolve: the wire takes ids
        raise ValueError("item_ids must list the order-item ids to cancel; got None.")
    order = f"order {order_id}, GootenId {gooten_id}" if order_id else f"GootenId {gooten_id}"
    return core.request(
        "PUT",
        ORDER_CANCEL_PATH,
        {"orderId": gooten_id},
        about=f"{order}: cancel items {name_ids(ids)}",
        body={"Ids": list(ids)},
    )
