"""What the batch engine applies to each order: an action that reads, decides, and writes once.

The engine (:mod:`gooten_provider.batch.order_change`, :mod:`gooten_provider.batch.engine`) owns what every
kind of write to Gooten shares: one record per order, the dry run, the stop, resuming from the results
files, and settling a write whose outcome is unknown by reading the order again. An action owns what is
particular to its kind of write: how one order is read, which state allows the write, and the write itself.
The status change (:class:`~gooten_provider.batch.status_change.StatusChange`) is the first one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from gooten_provider.batch.records import Outcome

#: What one read of an order gives the action (the item statuses for a status change).
State = TypeVar("State")


@dataclass(frozen=True)
class Decision:
    """What the state read allows: write (``UPDATED``), nothing to do (``UNCHANGED``), or ``INELIGIBLE``.

    ``error`` says why an order is ineligible, in words for the record and the log.
    """

    outcome: Outcome
    error: str | None = None

    @property
    def landed(self) -> bool:
        """Whether the order already shows the change (read again after a write: the write landed)."""
        return self.outcome is Outcome.UNCHANGED

    @property
    def blocked(self) -> bool:
        """Whether the order can no longer take the change (it moved on, or never could)."""
        return self.outcome is Outcome.INELIGIBLE


@dataclass(frozen=True)
class EarlierWrite:
    """A write of an earlier try of the task whose outcome that try never recorded (it died or was stopped).

    It is settled by reading the order before anything is sent; its ``previous_statuses`` (read before
    that write) stay the order's record of where it came from.
    """

    previous_statuses: tuple[str, ...]
    #: When the write was sent (seconds since the epoch): a change queued at Gooten lands within the settle
    #: window after it, so only the part of the window still to come is waited.
    sent_at: float


class OrderAction(Protocol[State]):
    """One kind of write applied to each order of a batch; the engine calls it from several threads.

    :meth:`read` and :meth:`write` raise the provider's errors (:mod:`gooten_provider.exceptions`);
    :meth:`decide` is pure, and is also how a read after a write is judged (``landed``: the write took
    effect; ``blocked``: it can no longer).
    """

    @property
    def target(self) -> str:
        """What the change brings an order to, as the records name it (their ``status``)."""
        ...

    @property
    def resend_is_safe(self) -> bool:
        """Whether a write whose answer was lost may be sent again (a late landing refuses it)."""
        ...

    def read(self, order_id: str) -> State:
        """Read what :meth:`decide` needs of one order."""
        ...

    def statuses(self, state: State) -> list[str]:
        """The item statuses of a state read, as the record keeps them (``previous_statuses``)."""
        ...

    def decide(self, state: State) -> Decision:
        """What the state allows; no I/O."""
        ...

    def write(self, order_id: str, state: State) -> None:
        """Send the change once (never retried here: the engine settles an unknown outcome)."""
        ...
