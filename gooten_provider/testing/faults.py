"""Fault kinds the local Gooten API can inject, and the plan that decides which request gets one.

None of these faults is documented Gooten behaviour (Gooten publishes no rate limits and no error
status codes). They exist to test that a client survives an unreliable network or proxy.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """A way the local API can misbehave on one request.

    The value is the short name used on the command line, in ``fault_kinds`` and in
    :attr:`JournalEntry.fault <gooten_provider.testing.server.JournalEntry.fault>`.
    """

    #: Reply HTTP 500 with a short HTML body; nothing is applied.
    HTTP_500 = "500"
    #: Reply HTTP 502 with a short HTML body; nothing is applied.
    HTTP_502 = "502"
    #: Reply HTTP 503 with a short HTML body; nothing is applied.
    HTTP_503 = "503"
    #: Reply HTTP 429 with ``Retry-After`` and ``{"Message": "Too many requests"}``; nothing is applied.
    HTTP_429 = "429"
    #: Read the request, apply nothing, then abort the connection with a TCP RST and no reply.
    RESET = "reset"
    #: Apply a valid status change, then abort the connection with a TCP RST and no reply.
    LOST_RESPONSE = "lost_response"
    #: Apply a valid status change, then wait ``slow_seconds`` before replying normally.
    SLOW = "slow"
    #: Reply HTTP 200 with an HTML page instead of JSON; nothing is applied.
    HTML = "html"
    #: Reply Gooten's ``HadError`` envelope, as when Gooten refuses a change for a reason a client cannot
    #: foresee; nothing is applied. Not a transport fault, so not among the random defaults.
    REFUSED = "refused"
    #: Abort the connection with no reply, then apply a valid status change ``slow_seconds`` later, as a
    #: backend that queued it would. Not among the random defaults: it tests how a client settles a write.
    LATE_APPLY = "late_apply"
    #: Reply HTTP 200 whose ``Content-Length`` promises more than the body sent, then close the connection:
    #: an answer cut off mid-way (a proxy's timeout, a dropped link); nothing is applied. Not among the
    #: random defaults, which the benchmarks' figures were measured with.
    CUT = "cut"

    @classmethod
    def parse(cls, value: FaultKind | str) -> FaultKind:
        """Return the fault kind for a value (``"503"``, ``"reset"``) or member name (``"HTTP_503"``).

        :raises ValueError: the value names no fault kind; the message lists the valid ones.
        """
        if isinstance(value, FaultKind):
            return value
        text = str(value).strip()
        for kind in cls:
            if text.lower() == kind.value or text.upper() == kind.name:
                return kind
        valid = ", ".join(kind.value for kind in cls)
        raise ValueError(f"Unknown fault kind {value!r}; use one of: {valid}.")


#: The default set for random faults: every way the network or a proxy can fail (all kinds but REFUSED).
ALL_FAULT_KINDS: tuple[FaultKind, ...] = tuple(
    kind for kind in FaultKind if kind not in (FaultKind.REFUSED, FaultKind.LATE_APPLY, FaultKind.CUT)
)

#: Fault kinds that end a request with no HTTP reply at all.
CONNECTION_FAULTS: frozenset[FaultKind] = frozenset(
    {FaultKind.RESET, FaultKind.LOST_RESPONSE, FaultKind.LATE_APPLY}
)


def parse_fault_kinds(kinds: Iterable[FaultKind | str] | str) -> tuple[FaultKind, ...]:
    """Turn fault kinds (or one comma-separated string such as ``"500,reset"``) into a tuple.

    :raises ValueError: a kind is unknown, or no kind is given.
    """
    items: Iterable[FaultKind | str] = kinds.split(",") if isinstance(kinds, str) else kinds
    parsed = tuple(dict.fromkeys(FaultKind.parse(kind) for kind in items if str(kind).strip()))
    if not parsed:
        raise ValueError("At least one fault kind is required.")
    return parsed


@dataclass(frozen=True, slots=True)
class QueuedFault:
    """A fault waiting in one order's queue, optionally only for one HTTP method."""

    kind: FaultKind
    method: str | None = None

    def matches(self, method: str) -> bool:
        """Tell whether a request with this HTTP method consumes the fault."""
        return self.method is None or self.method == method.upper()


class FaultPlan:
    """Decide which fault, if any, each request gets.

    Per-order queues come first: a request carrying an order id consumes the first fault queued for
    that id whose method filter matches. Otherwise a fault is drawn at random with probability
    ``rate`` from ``kinds``, using a ``random.Random`` seeded with ``seed``, so a sequential run is
    reproducible.

    Not thread-safe on its own: :class:`~gooten_provider.testing.server.GootenApiServer` calls it
    under its lock.
    """

    def __init__(
        self,
        rate: float = 0.0,
        kinds: Iterable[FaultKind | str] | str = ALL_FAULT_KINDS,
        seed: int | None = None,
    ) -> None:
        self._queues: dict[str, deque[QueuedFault]] = {}
        self._rng = random.Random(seed)  # noqa: S311 - fault injection, not cryptography
        self.rate = 0.0
        self.kinds: tuple[FaultKind, ...] = ALL_FAULT_KINDS
        self.set_rate(rate, kinds, seed)

    def set_rate(
        self,
        rate: float,
        kinds: Iterable[FaultKind | str] | str = ALL_FAULT_KINDS,
        seed: int | None = None,
    ) -> None:
        """Set the probability of a random fault and the kinds to draw from.

        :param seed: reseed the random generator; ``None`` keeps the current one.
        :raises ValueError: ``rate`` is outside ``[0, 1]`` or ``kinds`` is empty or unknown.
        """
        rate = float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {rate!r}.")
        self.kinds = parse_fault_kinds(kinds)
        self.rate = rate
        if seed is not None:
            self._rng.seed(seed)

    def queue(self, order_id: str, faults: Iterable[FaultKind | str], method: str | None = None) -> None:
        """Queue faults for the next requests that carry ``order_id`` (and use ``method``, if given).

        :raises ValueError: a fault kind is unknown, or ``method`` is none of ``GET``, ``POST``, ``PUT``.
        """
        method_name = method.upper() if method is not None else None
        if method_name not in (None, "GET", "POST", "PUT"):
            raise ValueError(f"method must be None, 'GET', 'POST' or 'PUT', got {method!r}.")
        entries = [QueuedFault(FaultKind.parse(fault), method_name) for fault in faults]
        self._queues.setdefault(order_id, deque()).extend(entries)

    def pending(self, order_id: str | None = None) -> int:
        """Count queued faults, for one order or for all of them."""
        if order_id is not None:
            return len(self._queues.get(order_id, ()))
        return sum(len(queue) for queue in self._queues.values())

    def clear(self, order_id: str | None = None) -> None:
        """Drop queued faults, for one order or for all of them (the random rate is kept)."""
        if order_id is None:
            self._queues.clear()
        else:
            self._queues.pop(order_id, None)

    def draw(self, order_id: str | None, method: str) -> FaultKind | None:
        """Return the fault for a request, consuming a queued one if any matches, else maybe a random one."""
        queue = self._queues.get(order_id) if order_id is not None else None
        if queue:
            for index, queued in enumerate(queue):
                if queued.matches(method):
                    del queue[index]
                    return queued.kind
        if self.rate > 0.0 and self._rng.random() < self.rate:
            return self._rng.choice(self.kinds)
        return None
