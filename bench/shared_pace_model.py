"""The fast model of the pace (``bench/pace_model.py``) with several tasks sharing one pace store.

Every task of the cell gets its own :class:`~gooten_provider.client.pacer.Pacer`, as each operator task in
its own process does, and all of them share one :class:`~gooten_provider.client.pacer.LocalPaceStore`
(``shared=True``): one schedule of slots, one pause, the account's answer counts and the controller's state
after each 429, atomically, as the Redis store keeps them for every task of an account. Each task sees the
store through a :class:`RoundTripView`, which answers as the Redis store does: the counts, the published
state and the start as of that task's last round trip, its own counts sent with its next one.

A cell scores the targets of issue 23 for the shared pace: aggregate useful throughput >= 0.90 of the rate,
<= 5% of requests answered 429, 0 failed, and the slowest task's rate >= 0.8 of the fastest's.

``python -m bench.shared_pace_model`` scores 4 and 8 tasks at several limits and prints every cell.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.pace_model import Cell, Jitter, Score, Simulation
from gooten_provider.client.bucket_fit import Answer
from gooten_provider.client.pacer import LocalPaceStore, Pacer, PaceState

SHARED_USEFUL, SHARED_THROTTLED, SHARED_FAIRNESS = 0.90, 0.05, 0.8
TYPICAL_JITTER = Jitter()


class RoundTripView:
    """One task's view of a shared store, answering as the Redis store does.

    What :class:`~gooten_provider.client.redis_store.RedisPaceStore` caches (the counts, the published
    state, the start) is as of this task's last round trip (a slot taken, a state published), and the
    answers it counts reach the store with its next one.
    """

    shared = True

    def __init__(self, store: LocalPaceStore) -> None:
        self._store = store
        self._unsent = (0, 0)
        self._unsent_answers: list[Answer] = []
        self._last_noted = 0.0  # when the last answer was counted
        self._counts = store.counts()
        self._state = store.shared_state()
        self._started = store.started()

    def _round_trip(self, now: float) -> None:
        for _ in range(self._unsent[0]):
            self._store.note_accepted(now)
        for _ in range(self._unsent[1]):
            self._store.note_refused(now)
        self._unsent = (0, 0)
        for ticket, kind in self._unsent_answers:
            self._store.log_answer(ticket, kind)
        self._unsent_answers = []
        self._counts, self._state = self._store.counts(), self._store.shared_state()

    def take_slot(self, now: float, interval: float) -> float:
        """See :meth:`PaceStore.take_slot`."""
        return self.take_slot_within(now, interval, math.inf)[0]

    def take_slot_within(self, now: float, interval: float, horizon: float) -> tuple[float, bool]:
        """See :meth:`PaceStore.take_slot_within`."""
        self._round_trip(now)
        taken = self._store.take_slot_within(now, interval, horizon)
        self._started = self._store.started()
        return taken

    def sync(self) -> None:
        """See :meth:`PaceStore.sync`."""
        self._round_trip(self._last_noted)

    def pause(self, until: float) -> None:
        """See :meth:`PaceStore.pause`."""
        self._store.pause(until)

    def paused_until(self) -> float:
        """See :meth:`PaceStore.paused_until`."""
        return self._store.paused_until()

    def note_accepted(self, now: float) -> None:
        """See :meth:`PaceStore.note_accepted`."""
        self._unsent = (self._unsent[0] + 1, self._unsent[1])
        self._last_noted = now

    def note_refused(self, now: float) -> None:
        """See :meth:`PaceStore.note_refused`."""
        self._unsent = (self._unsent[0], self._unsent[1] + 1)
        self._last_noted = now

    def log_answer(self, ticket: float, kind: int) -> None:
        """See :meth:`PaceStore.log_answer` (sent with the next round trip)."""
        self._unsent_answers.append((ticket, kind))

    def answers(self) -> list[Answer]:
        """See :meth:`PaceStore.answers` (this task's unsent answers go with it, as in Redis: one trip)."""
        self._round_trip(self._last_noted)
        return self._store.answers()

    def counts(self) -> tuple[int, int]:
        """See :meth:`PaceStore.counts`."""
        return self._counts[0] + self._unsent[0], self._counts[1] + self._unsent[1]

    def started(self) -> float:
        """See :meth:`PaceStore.started`."""
        return self._started

    def shared_state(self) -> PaceState | None:
        """See :meth:`PaceStore.shared_state`."""
        return self._state

    def publish_state(self, state: PaceState, replaces: str | None) -> PaceState:
        """See :meth:`PaceStore.publish_state`."""
        self._round_trip(state.at)
        self._state = self._store.publish_state(state, replaces)
        return self._state


class SharedSimulation(Simulation):
    """:class:`~bench.pace_model.Simulation` with every task's pacer on one shared store.

    :param round_trips: each task sees the store through a :class:`RoundTripView` (as through Redis); off,
        every answer is the store's latest.
    """

    def __init__(
        self, cell: Cell, *, jitter: Jitter = TYPICAL_JITTER, seed: int = 0, round_trips: bool = True
    ) -> None:
        super().__init__(cell, jitter=jitter, seed=seed)
        self.store = LocalPaceStore(self.now, shared=True)
        self.pacers = [
            Pacer(
                ceiling=cell.ceiling,
                store=RoundTripView(self.store) if round_trips else self.store,
                clock=self.clock,
                sleep=self._no_sleep,
            )
            for _ in range(cell.tasks)
        ]


def fairness(per_task: Sequence[int]) -> float:
    """The slowest task's accepted requests over the fastest's."""
    return min(per_task) / max(per_task) if max(per_task) else 0.0


@dataclass(frozen=True)
class SharedScore:
    """A shared cell's score against the targets of issue 23.

    :param score: the runs' sum.
    :param fairness: the slowest task's accepted requests over the fastest's, in the least fair run.
    """

    score: Score
    fairness: float

    @property
    def met(self) -> bool:
        """Every target of the shared pace."""
        score = self.score
        return (
            score.useful >= SHARED_USEFUL
            and score.refused_share <= SHARED_THROTTLED
            and not score.failed
            and self.fairness >= SHARED_FAIRNESS
        )

    def line(self) -> str:
        """The score in one line."""
        score = self.score
        return (
            f"{score.cell.label():42} useful {score.useful:4.2f}  429s {100 * score.refused_share:5.1f}%  "
            f"failed {score.failed}  slowest/fastest {self.fairness:4.2f}  {'ok' if self.met else 'MISS'}"
        )


def simulate_shared(
    cell: Cell, *, jitter: Jitter = TYPICAL_JITTER, seed: int = 0, seeds: int = 1, round_trips: bool = True
) -> SharedScore:
    """Run one cell ``seeds`` times on a shared store; return the runs' sum."""
    total = Score(cell, per_task=[0] * cell.tasks)
    fairest = 1.0
    for offset in range(seeds):
        score = SharedSimulation(cell, jitter=jitter, seed=seed + offset, round_trips=round_trips).run()
        fairest = min(fairest, fairness(score.per_task))
        total.accepted += score.accepted
        total.refused += score.refused
        total.failed += score.failed
        total.seconds += score.seconds
        total.per_task = [a + b for a, b in zip(total.per_task, score.per_task, strict=True)]
    return SharedScore(total, fairest)


def shared_grid(
    *,
    tasks: Sequence[int] = (4, 8),
    rates: Sequence[float] = (10.0, 50.0, 150.0),
    bursts: Sequence[int] = (1, 5, 15),
    retry_afters: Sequence[bool] = (True, False),
    workers: int = 8,
    latency: float = 0.02,
    seconds: float = 30.0,
) -> list[Cell]:
    """Several tasks of ``workers`` workers on one account, at each rate, burst and Retry-After."""
    return [
        Cell(rate, burst, latency, retry_after, workers, tasks=count, seconds=seconds)
        for count, rate, burst, retry_after in itertools.product(tasks, rates, bursts, retry_afters)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Score the shared grid and print every cell."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="simulated seconds per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="runs of each cell (summed)")
    parser.add_argument("--tasks", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 50.0, 150.0])
    parser.add_argument("--bursts", type=int, nargs="+", default=[1, 5, 15])
    parser.add_argument("--retry-after", choices=["yes", "no", "both"], default="both")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--trace", type=float, default=0.0, help="one cell: print its course every N s")
    args = parser.parse_args(argv)
    cells = shared_grid(
        tasks=args.tasks,
        rates=args.rates,
        bursts=args.bursts,
        retry_afters={"yes": (True,), "no": (False,), "both": (True, False)}[args.retry_after],
        workers=args.workers,
        latency=args.latency,
        seconds=args.seconds,
    )
    if args.trace:
        simulation = SharedSimulation(cells[0], seed=args.seed)
        score = simulation.run(trace_every=args.trace)
        print("\n".join(simulation.trace))
        print(SharedScore(score, fairness(score.per_task)).line())
        return 0
    scores = [simulate_shared(cell, seed=args.seed, seeds=args.seeds) for cell in cells]
    for shared in scores:
        print(shared.line())
    print(f"shared pace: {sum(s.met for s in scores)} of {len(scores)} cells met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
