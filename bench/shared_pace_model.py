"""The fast model of the pace (``bench/pace_model.py``) with several tasks sharing one pace store.

Every task of the cell gets its own :class:`~gooten_provider.client.pacer.Pacer`, as each operator task in
its own process does, and all of them share one :class:`~gooten_provider.client.pacer.LocalPaceStore`
(``shared=True``): one schedule of slots, one pause, the account's answer counts and the controller's state
after each 429, atomically, as the Redis store keeps them for every task of an account (the Redis store
answers some of it from its last round trip, at most one request old; the model answers at once).

A cell scores the targets of issue 23 for the shared pace: aggregate useful throughput >= 0.90 of the rate,
<= 5% of requests answered 429, 0 failed, and the slowest task's rate >= 0.8 of the fastest's.

``python -m bench.shared_pace_model`` scores 4 and 8 tasks at several limits and prints every cell.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from bench.pace_model import Cell, Jitter, Score, Simulation
from gooten_provider.client.pacer import LocalPaceStore, Pacer

SHARED_USEFUL, SHARED_THROTTLED, SHARED_FAIRNESS = 0.90, 0.05, 0.8
TYPICAL_JITTER = Jitter()


class SharedSimulation(Simulation):
    """:class:`~bench.pace_model.Simulation` with every task's pacer on one shared store."""

    def __init__(self, cell: Cell, *, jitter: Jitter = TYPICAL_JITTER, seed: int = 0) -> None:
        super().__init__(cell, jitter=jitter, seed=seed)
        self.store = LocalPaceStore(self.now, shared=True)
        self.pacers = [
            Pacer(ceiling=cell.ceiling, store=self.store, clock=self.clock, sleep=self._no_sleep)
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
    cell: Cell, *, jitter: Jitter = TYPICAL_JITTER, seed: int = 0, seeds: int = 1
) -> SharedScore:
    """Run one cell ``seeds`` times on a shared store; return the runs' sum."""
    total = Score(cell, per_task=[0] * cell.tasks)
    fairest = 1.0
    for offset in range(seeds):
        score = SharedSimulation(cell, jitter=jitter, seed=seed + offset).run()
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
