"""The item cancellation (``PUT /api/orderCancel``) as the batch engine's action: it cancels held orders.

Each order is read (GET order: its ``GootenId``, its items' ids and statuses) and decided by
:func:`~gooten_provider.order_cancel_decision.plan_item_cancellation`: every wanted item cancelled already,
``unchanged``; a wanted item in a status Gooten allows no item cancellation from, ``ineligible`` (nothing is
sent, the message names the items and their statuses); else the items not cancelled yet are sent once.

A write whose answer was lost may be re-sent after a re-read: a cancelled item cannot be cancelled again,
and Gooten refuses the whole request when one item cannot be cancelled, so a re-send after a late landing is
refused, never applied twice. The engine re-reads first and re-sends only the items still not cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gooten_provider.batch.action import Decision
from gooten_provider.batch.records import Outcome
from gooten_provider.order_cancel_decision import CancelDecision, CancelPlan, plan_item_cancellation

#: What the records name as the target of an item cancellation (their ``status``): the items' new status.
CANCELLED_TARGET = "Cancelled"

#: The engine's outcome for each decision of a read order.
_OUTCOMES: dict[CancelDecision, Outcome] = {
    CancelDecision.CANCEL: Outcome.UPDATED,
    CancelDecision.UNCHANGED: Outcome.UNCHANGED,
    CancelDecision.INELIGIBLE: Outcome.INELIGIBLE,
}


class OrderCancelApi(Protocol):
    """What the item cancellation needs of a Gooten client or hook."""

    def get_order(self, order_id: str) -> dict[str, Any]:
        """Return one order as Gooten describes it."""
        ...

    def send_item_cancellation(
        self, gooten_id: int, item_ids: Sequence[int], *, order_id: str | None = None
    ) -> dict[str, Any]:
        """Send one ``PUT /api/orderCancel`` for items of the order ``gooten_id``."""
        ...


def decide_item_cancellation(plan: CancelPlan) -> Decision:
    """What a read order allows: the write, nothing to do, or ineligible (naming the items that block it)."""
    outcome = _OUTCOMES[plan.decision]
    return Decision(outcome, plan.ineligible_message() if outcome is Outcome.INELIGIBLE else None)


@dataclass(frozen=True)
class ItemCancellation:
    """Cancel items of each order; its state is the order's :class:`CancelPlan`.

    ``item_ids`` maps an order's Safe ID, case-folded, to the order-item ids to cancel; an order not in it
    (or mapped to ``None``) has every item cancelled. Checking that the mapping names only the batch's orders
    is the caller's (the operator does it before any request).
    """

    api: OrderCancelApi
    item_ids: Mapping[str, Sequence[int] | None] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """The wanted items' status once cancelled."""
        return CANCELLED_TARGET

    @property
    def resend_is_safe(self) -> bool:
        """Always: a re-send after a late landing names a cancelled item, which Gooten refuses."""
        return True

    def read(self, order_id: str) -> CancelPlan:
        """Read the order and decide which of its wanted items to send.

        :raises GootenOrderItemsError: an item id given is not one of the order's (failed, nothing sent).
        :raises GootenApiError: the read failed, or the order has no GootenId or no nameable items.
        """
        wanted = self.item_ids.get(order_id.casefold())
        return plan_item_cancellation(order_id, self.api.get_order(order_id), wanted)

    def statuses(self, state: CancelPlan) -> list[str]:
        """The statuses of the wanted items, as read (``previous_statuses`` of the record)."""
        return [item.status for item in state.items]

    def decide(self, state: CancelPlan) -> Decision:
        """See :func:`decide_item_cancellation`."""
        return decide_item_cancellation(state)

    def write(self, order_id: str, state: CancelPlan) -> None:
        """``PUT /api/orderCancel`` once, for the wanted items not cancelled yet."""
        self.api.send_item_cancellation(state.gooten_id, state.to_send, order_id=order_id)
