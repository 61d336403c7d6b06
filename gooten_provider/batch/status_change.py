"""The status change (``POST /api/orderstatus``) as the batch engine's action: the first one it runs.

An order is changed only when every item is in a status Gooten allows a change from
(:data:`~gooten_provider.statuses.CHANGEABLE_FROM_STATUSES`); at the target already, it is ``unchanged``.
A write whose answer was lost is re-sent only to a target Gooten refuses any change *from* (``Hold``,
``Cancelled``, ``Test``): if the first write landed late, the re-send is refused rather than applied twice.
``New`` is changeable, and each acceptance re-submits the order to production, so a lost ``New`` is only
read, over a window at least as long as the request timeout (:mod:`gooten_provider.batch.order_change`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gooten_provider.batch.action import Decision
from gooten_provider.batch.records import Outcome
from gooten_provider.statuses import CHANGEABLE_FROM_STATUSES, can_change_from


class OrderStatusApi(Protocol):
    """What the status change needs of a Gooten client or hook."""

    def get_order_status(self, order_id: str) -> list[str]:
        """Return the item statuses of an order."""
        ...

    def update_order_status(self, order_id: str, status: str) -> dict[str, Any]:
        """Set the status of every item of an order."""
        ...


def resend_is_safe(target: str) -> bool:
    """Tell whether a write to ``target`` whose outcome is unknown may be sent again.

    It may when Gooten refuses a change from the target itself: if the first write landed late, the
    re-send is refused rather than applied a second time. ``New`` is changeable, so it is never re-sent.
    """
    return target not in CHANGEABLE_FROM_STATUSES


def ineligible_message(statuses: Sequence[str]) -> str:
    """Why an order with these item statuses cannot be changed, naming the statuses that block it."""
    blocking = sorted({s for s in statuses if s not in CHANGEABLE_FROM_STATUSES})
    message = (
        f"items are {', '.join(blocking)}; Gooten allows a change only from "
        f"{', '.join(sorted(CHANGEABLE_FROM_STATUSES))}"
    )
    if "Hold" in blocking:
        message += (
            " (a held order can only be released by Gooten support or in the Gooten Admin; its items can be"
            " cancelled with GootenCancelOrderItemsOperator)"
        )
    return message


def decide_status_change(statuses: Sequence[str], target: str) -> Decision:
    """What item statuses allow for a change to ``target``: nothing to do, ineligible, or the write."""
    if all(status == target for status in statuses):
        return Decision(Outcome.UNCHANGED)
    if not can_change_from(statuses):
        return Decision(Outcome.INELIGIBLE, ineligible_message(statuses))
    return Decision(Outcome.UPDATED)


@dataclass(frozen=True)
class StatusChange:
    """Set every item of an order to ``target`` (a normalised target status); its state is the statuses."""

    api: OrderStatusApi
    target: str

    @property
    def resend_is_safe(self) -> bool:
        """See :func:`resend_is_safe`."""
        return resend_is_safe(self.target)

    def read(self, order_id: str) -> list[str]:
        """The order's item statuses."""
        return self.api.get_order_status(order_id)

    def statuses(self, state: list[str]) -> list[str]:
        """The state is the statuses."""
        return list(state)

    def decide(self, state: list[str]) -> Decision:
        """See :func:`decide_status_change`."""
        return decide_status_change(state, self.target)

    def write(self, order_id: str, state: list[str]) -> None:
        """``POST /api/orderstatus`` once."""
        self.api.update_order_status(order_id, self.target)
