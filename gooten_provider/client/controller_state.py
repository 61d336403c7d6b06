"""What the pace controller shares with every client of its store, and the numbers the store keeps of it.

Sharing a :class:`~gooten_provider.client.pace_store.PaceStore`, each
:class:`~gooten_provider.client.pacer.Pacer` publishes what a 429 taught it and adopts what another client
published. :class:`ControllerState` is that state, typed; the store keeps it as the flat numbers of a
:class:`~gooten_provider.client.pace_store.PaceState` (:meth:`ControllerState.to_values`, read back by
:meth:`ControllerState.from_values`): flags and counts as numbers, times as offsets from the publication, so
the clients' clocks need not agree.

These numbers are a wire format between versions: a Redis store keeps the last state for an hour after its
last use, so clients of this version and of the previous one may read each other's. A key renamed, dropped
or given another meaning is a state the other version cannot read (it ignores it, and paces by its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: When the bucket was last found empty (the ticket of that 429), and the answers and 429s counted then.
Mark = tuple[float, int, int]

# Every version of this controller wrote these ("crossing" came later: read as 0 when absent).
_REQUIRED_KEYS = frozenset(
    {
        "paced", "pace", "estimate", "margin", "hold", "upper", "last_peak", "last_retry_after", "probing",
        "cut_at", "resumed", "last_refused", "cut_accepted", "cut_refused",
    }
)  # fmt: skip
_MARK_KEYS = ("mark_ticket", "mark_accepted", "mark_refused")  # all three, or none


@dataclass(frozen=True, slots=True)
class ControllerState:
    """The controller's state after a 429, as every client of the store paces by it.

    Times are in the clock of the client holding the record. Equality leaves out ``paced``, ``probing``,
    ``last_peak``, ``last_retry_after`` and ``cut_counts``: the pacer publishes after a 429 when the state
    differs from the one before it, and a 429 that changed only those has never been published.

    :param paced: whether the slow start has ended (the first 429 came).
    :param pace: the pace in requests per second.
    :param estimate: the gateway's rate as learnt, in requests per second.
    :param margin: the share of the estimate the pace is held at.
    :param hold: how long the pace is held after a cut, in seconds.
    :param upper: the pace last refused.
    :param last_peak: the pace of the last refused probe.
    :param last_retry_after: the last 429's ``Retry-After`` in seconds (0: none).
    :param probing: whether the hold since the last cut has ended.
    :param crossing: whether the pace is rising through a fitted range of the limit.
    :param cut_at: when the pace was last set by a 429.
    :param resumed: when the last ``Retry-After`` pause ends.
    :param last_refused: the ticket of the last request answered 429.
    :param cut_counts: the answers accepted and the 429s counted at the last cut.
    :param mark: when the bucket was last found empty, and the counts then (``None``: not since the counts
        started afresh).
    """

    paced: bool = field(compare=False)
    pace: float
    estimate: float
    margin: float
    hold: float
    upper: float
    last_peak: float = field(compare=False)
    last_retry_after: float = field(compare=False)
    probing: bool = field(compare=False)
    crossing: bool
    cut_at: float
    resumed: float
    last_refused: float
    cut_counts: tuple[int, int] = field(compare=False)
    mark: Mark | None

    def to_values(self, now: float) -> dict[str, float]:
        """The numbers a store keeps of this state published at ``now`` (times as offsets from it)."""
        values: dict[str, float] = {
            "paced": float(self.paced),
            "pace": self.pace,
            "estimate": self.estimate,
            "margin": self.margin,
            "hold": self.hold,
            "upper": self.upper,
            "last_peak": self.last_peak,
            "last_retry_after": self.last_retry_after,
            "probing": float(self.probing),
            "crossing": float(self.crossing),
            "cut_at": self.cut_at - now,
            "resumed": self.resumed - now,
            "last_refused": self.last_refused - now,
            "cut_accepted": self.cut_counts[0],
            "cut_refused": self.cut_counts[1],
        }
        if self.mark is not None:
            ticket, accepted, refused = self.mark
            values.update(mark_ticket=ticket - now, mark_accepted=accepted, mark_refused=refused)
        return values

    @classmethod
    def from_values(cls, values: Mapping[str, float], at: float) -> ControllerState | None:
        """The state a client published at ``at`` (in this client's clock) as ``values``.

        ``None`` when the numbers are not this controller's: a key missing, or a value that is not a number
        (or not a count where one is due), as another version of the controller may have left in the store.
        """
        if not _REQUIRED_KEYS <= values.keys():
            return None
        try:
            numbers = {key: float(value) for key, value in values.items()}
            cut_counts = (int(numbers["cut_accepted"]), int(numbers["cut_refused"]))
            mark = _mark(numbers, at)
        except (TypeError, ValueError, OverflowError):
            return None
        return cls(
            paced=bool(numbers["paced"]),
            pace=numbers["pace"],
            estimate=numbers["estimate"],
            margin=numbers["margin"],
            hold=numbers["hold"],
            upper=numbers["upper"],
            last_peak=numbers["last_peak"],
            last_retry_after=numbers["last_retry_after"],
            probing=bool(numbers["probing"]),
            crossing=bool(numbers.get("crossing", 0.0)),
            cut_at=at + numbers["cut_at"],
            resumed=at + numbers["resumed"],
            last_refused=at + numbers["last_refused"],
            cut_counts=cut_counts,
            mark=mark,
        )


def _mark(numbers: Mapping[str, float], at: float) -> Mark | None:
    ticket, accepted, refused = (numbers.get(key) for key in _MARK_KEYS)
    if ticket is None or accepted is None or refused is None:
        return None
    return (at + ticket, int(accepted), int(refused))
