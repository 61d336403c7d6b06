"""The gateway's rate as its answers tell it: the token bucket consistent with which requests it refused.

A gateway's token bucket of rate R and burst B lets a request through when it holds a token and refuses it
(429) when empty. Run backwards, a sequence of answers constrains R: count, for a candidate rate, how many
tokens the client's accepted requests have taken beyond what refilled (the *backlog*, never below 0: a full
bucket overflows). Every accepted request needs backlog <= B, every refused one found the bucket empty
(backlog > B - 1). So at the true rate the backlog is the same, B, at every refusal, and no accepted request
ran it higher; at a wrong rate the refusals disagree.

This is what a ``Retry-After`` pause needs: the rate measured as "accepted between two 429s over the time
between them" counts the pause as time the gateway was letting requests through and misses the burst the
pause refilled, so it reads far too low (0.56 of R at 50 requests/s, burst 5). The backlog counts both:
the pause drains it (the bucket refills, up to B and no further) and the refilled burst is spent from it.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Answers older than this (seconds before the newest) are forgotten: a limit may change.
HISTORY_SECONDS = 30.0
#: The most answers kept (the oldest go first); at 200 requests/s, 20 s.
HISTORY_ANSWERS = 4000
#: Candidate rates tried, log-spaced, first over the whole range, then around the best of them.
COARSE_STEPS = 48
FINE_STEPS = 24
# Rates whose misfit is within this many tokens of the least fit as well as it does.
_WITHIN = 0.5


#: What became of a request, as an answer log keeps it: accepted, refused (a 429), or refused first after a
#: pause (the bucket found empty once more).
ACCEPTED, REFUSED, EMPTIED = 0, 1, 2
#: One logged answer: when its request left (a ticket) and what became of it.
Answer = tuple[float, int]


@dataclass(frozen=True)
class BucketFit:
    """The rates of the token buckets the answers fit best: from ``least`` to ``most``."""

    least: float
    most: float


class AnswerHistory:
    """The recent answers of one client: when each request left (its ticket) and whether it was refused."""

    def __init__(self) -> None:
        self._tickets: list[float] = []
        self._refused: list[bool] = []
        self._empty_after_pause: list[float] = []

    @classmethod
    def of(cls, answers: Iterable[Answer]) -> AnswerHistory:
        """The history of a log of answers (an account's, kept by a shared store)."""
        history = cls()
        for ticket, kind in answers:
            history.add(ticket, refused=kind != ACCEPTED)
            if kind == EMPTIED:
                history.refused_after_pause(ticket)
        return history

    def add(self, ticket: float, *, refused: bool) -> None:
        """Take in one answer (answers come back out of order: each is filed by its ticket)."""
        at = bisect.bisect_right(self._tickets, ticket)
        self._tickets.insert(at, ticket)
        self._refused.insert(at, refused)
        newest = self._tickets[-1]
        cut = bisect.bisect_left(self._tickets, newest - HISTORY_SECONDS)
        cut = max(cut, len(self._tickets) - HISTORY_ANSWERS)
        if cut > 0:
            del self._tickets[:cut]
            del self._refused[:cut]

    def forget(self) -> None:
        """Forget every answer (the limit changed, or the answers are no longer this client's alone)."""
        self._tickets.clear()
        self._refused.clear()
        self._empty_after_pause.clear()

    def episodes(self) -> int:
        """How many times the bucket was found empty with a pause between (429s before a pause are one)."""
        return len(self._empty_after_pause)

    def refused_after_pause(self, ticket: float) -> None:
        """Note a 429 to a request sent after the last pause ended: the bucket found empty once more."""
        self._empty_after_pause.append(ticket)
        while self._empty_after_pause and self._tickets and self._empty_after_pause[0] < self._tickets[0]:
            self._empty_after_pause.pop(0)

    def fit_rate(self, low: float, high: float) -> BucketFit | None:
        """The buckets with a rate in ``[low, high]`` most consistent with the answers.

        ``None`` until the bucket was found empty twice with a pause between: once fits every rate.
        """
        if self.episodes() < 2 or not 0 < low < high:
            return None
        rates = _log_steps(low, high, COARSE_STEPS)
        least, most = _best(rates, [self._misfit(rate) for rate in rates])
        ratio = (high / low) ** (1 / (COARSE_STEPS - 1))
        fine = _log_steps(max(low, least / ratio), min(high, most * ratio), FINE_STEPS)
        return BucketFit(*_best(fine, [self._misfit(rate) for rate in fine]))

    def _misfit(self, rate: float) -> float:
        """How far the answers are from the best bucket of this rate: in tokens, summed over the answers.

        The backlog is the tokens taken beyond what refilled, as the answers went (never under 0: a full
        bucket overflows). A request accepted needed backlog <= burst after it, a refused one found
        backlog > burst - 1; each answer off by x tokens counts x, for the burst that makes the sum least.
        """
        taken, met = self._backlogs(rate)
        return _least_misfit(sorted(taken), sorted(met))

    def _backlogs(self, rate: float) -> tuple[list[float], list[float]]:
        """At this rate: the backlog each accepted request left, and each refused one met, plus one.

        A refused request proves the bucket's burst under its backlog plus one.
        """
        backlog, last = 0.0, self._tickets[0]
        taken: list[float] = []
        met: list[float] = []
        for ticket, refused in zip(self._tickets, self._refused, strict=True):
            backlog = max(0.0, backlog - rate * (ticket - last))
            last = ticket
            if refused:
                met.append(backlog + 1.0)
            else:
                backlog += 1.0
                taken.append(backlog)
        return taken, met


def _least_misfit(taken: Sequence[float], met: Sequence[float]) -> float:
    """The least, over bursts b >= 1, of sum((t - b)+ for t in taken) + sum((b - m)+ for m in met).

    Both are sorted.

    The sum is convex and piecewise linear in b, so its least is at one of the values (or 1); and where
    its slope turns, as many taken values are above b as met values below it, so b is a met value or one
    of the len(met) + 1 highest taken ones.
    """
    taken_sums = list(itertools.accumulate(taken, initial=0.0))
    met_sums = list(itertools.accumulate(met, initial=0.0))

    def misfit(burst: float) -> float:
        above = bisect.bisect_right(taken, burst)
        below = bisect.bisect_left(met, burst)
        over = (taken_sums[-1] - taken_sums[above]) - burst * (len(taken) - above)
        under = burst * below - met_sums[below]
        return over + under

    candidates = {
        1.0,
        *(value for value in met if value > 1),
        *taken[-(len(met) + 1) :],
    }
    return min(misfit(burst) for burst in candidates if burst >= 1)


def _best(rates: Sequence[float], misfits: Sequence[float]) -> tuple[float, float]:
    """The lowest and highest rates of the highest run of neighbouring rates that fit best.

    Several runs may fit as well (a slow bucket with a deep burst answers some sequences as a fast shallow
    one does): the highest is taken, since pacing over the limit costs one more 429, and under it, every
    request until the pace has climbed back.
    """
    fewest = min(misfits)
    top = max(index for index, misfit in enumerate(misfits) if misfit <= fewest + _WITHIN)
    bottom = top
    while bottom > 0 and misfits[bottom - 1] <= fewest + _WITHIN:
        bottom -= 1
    return rates[bottom], rates[top]


def _log_steps(low: float, high: float, steps: int) -> Sequence[float]:
    if high <= low:
        return [low]
    ratio = (high / low) ** (1 / (steps - 1))
    return [low * ratio**step for step in range(steps)]
