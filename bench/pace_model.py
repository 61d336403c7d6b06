"""A fast model of the pace: the real ``Pacer`` on a fake clock against the local API's real token bucket.

The throttling grid of issue 19 (rates 5-200/s, bursts 1-20, latencies 5-100 ms, with and without
``Retry-After``, 4-64 workers, and three tasks sharing one account) takes an hour on the real local API.
Here the same :class:`~gooten_provider.client.pacer.Pacer` and the same
:class:`~gooten_provider.testing.throttling.TokenBucket` run in a discrete-event simulation, so the whole
grid is scored in seconds:

* each of ``workers`` workers takes the next request, asks the pacer for a slot (``reserve``), sleeps until
  it, wakes up *late* by a random jitter (the arrival jitter of threads on loaded cores, see
  :class:`Jitter`), checks the slot still holds (``confirm``) and sends;
* the request reaches the bucket at once; a token taken, it is answered after ``latency``; none, it is
  answered ``429`` after ``latency`` with ``Retry-After`` in whole seconds rounded up (as the local API
  sends it), or without one;
* the worker reports the answer (``record``) and sends the request again if it was refused, until
  ``throttle_timeout`` has passed since its first refusal (then the request *fails*), else takes the next.

A cell scores *useful* (accepted requests per second of the run over the attainable rate, the smaller of
the rate and ``workers / latency``), the share of requests answered 429, and failed requests, against the
targets of issue 19 (one task: useful >= 0.90, 429s <= 5%, 0 failed; three tasks: >= 0.80 and <= 10%).

``python -m bench.pace_model`` scores the grid and prints the misses; ``--cell`` runs one cell and prints its
pacer's trace.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from gooten_provider.client.pacer import Pacer
from gooten_provider.testing.throttling import TokenBucket, retry_after_seconds

ONE_TASK_USEFUL, ONE_TASK_THROTTLED = 0.90, 0.05
MULTI_USEFUL, MULTI_THROTTLED = 0.80, 0.10


@dataclass(frozen=True)
class Jitter:
    """How late a worker that slept until its slot really sends: usually a fraction of a millisecond, now and
    then (a thread descheduled on a loaded core) several milliseconds.

    :param typical: the mean of the usual lateness, in seconds (exponentially distributed).
    :param spike_share: the share of wake-ups that are descheduled.
    :param spike: the mean extra lateness of those, in seconds (exponentially distributed).
    """

    typical: float = 0.0003
    spike_share: float = 0.02
    spike: float = 0.004

    def draw(self, rng: random.Random) -> float:
        """One wake-up's lateness, in seconds."""
        late = rng.expovariate(1 / self.typical) if self.typical > 0 else 0.0
        if self.spike_share and rng.random() < self.spike_share:
            late += rng.expovariate(1 / self.spike)
        return late


NO_JITTER = Jitter(0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Cell:
    """One limit of the grid, and the client that meets it."""

    rate: float
    burst: int
    latency: float
    retry_after: bool
    workers: int
    tasks: int = 1
    seconds: float = 20.0
    throttle_timeout: float = 300.0
    ceiling: float | None = None
    #: Each task's requests, or ``None`` for as many as ``seconds`` allows. Finite, the run ends when the
    #: last task is done, and a task left alone must take the others' share back (the real bench's tail).
    work: int | None = None
    #: Task ``k`` starts ``k * stagger`` seconds after the first (real tasks start apart: process start).
    stagger: float = 0.0

    @property
    def attainable(self) -> float:
        """Requests per second no client can beat: the rate, or the latency limit ``workers / latency``."""
        return min(self.rate, self.tasks * self.workers / self.latency)

    def label(self) -> str:
        """The cell in one short line."""
        tasks = f" x{self.tasks} tasks" if self.tasks > 1 else ""
        work = f" {self.work} each" if self.work is not None else ""
        stagger = f" {self.stagger:g}s apart" if self.stagger else ""
        return (
            f"R={self.rate:g} B={self.burst} L={1000 * self.latency:g}ms "
            f"RA={'yes' if self.retry_after else 'no'} W={self.workers}{tasks}{work}{stagger}"
        )


@dataclass
class Score:
    """What one run of a cell did."""

    cell: Cell
    accepted: int = 0
    refused: int = 0
    failed: int = 0
    seconds: float = 0.0
    per_task: list[int] = field(default_factory=list)

    @property
    def useful(self) -> float:
        """Accepted requests per second over the attainable rate."""
        return self.accepted / self.seconds / self.cell.attainable if self.seconds else 0.0

    @property
    def refused_share(self) -> float:
        """The share of requests answered 429."""
        sent = self.accepted + self.refused
        return self.refused / sent if sent else 0.0

    @property
    def met(self) -> bool:
        """Every target of the cell's kind (one task, or several on one account)."""
        useful, refused = (
            (ONE_TASK_USEFUL, ONE_TASK_THROTTLED) if self.cell.tasks == 1 else (MULTI_USEFUL, MULTI_THROTTLED)
        )
        return self.useful >= useful and self.refused_share <= refused and not self.failed

    def line(self) -> str:
        """The score in one line."""
        return (
            f"{self.cell.label():42} useful {self.useful:4.2f}  429s {100 * self.refused_share:5.1f}%  "
            f"failed {self.failed}  {'ok' if self.met else 'MISS'}"
        )


class Simulation:
    """Discrete events on a fake clock: workers, their pacers, one token bucket."""

    def __init__(self, cell: Cell, *, jitter: Jitter = Jitter(), seed: int = 0) -> None:
        random.seed(seed)  # the pacer spreads waiting threads with the module's random numbers
        self.cell = cell
        self.now = 0.0
        self.rng = random.Random(seed)
        self.jitter = jitter
        self.bucket = TokenBucket(cell.rate, cell.burst, 0.0)
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self.pacers = [
            Pacer(ceiling=cell.ceiling, clock=self.clock, sleep=self._no_sleep) for _ in range(cell.tasks)
        ]
        self.score = Score(cell, per_task=[0] * cell.tasks)
        self.trace: list[str] = []
        self._taken = [0] * cell.tasks  # requests each task's workers took (of ``cell.work``)
        self._done_at = [0.0] * cell.tasks  # when each task's last request was answered

    def clock(self) -> float:
        """The fake clock's time."""
        return self.now

    @staticmethod
    def _no_sleep(seconds: float) -> None:
        raise AssertionError("the model waits by events, never by sleep()")

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` at ``when``."""
        heapq.heappush(self._events, (when, next(self._order), action))

    def run(self, *, trace_every: float = 0.0) -> Score:
        """Every task's workers for ``cell.seconds`` of simulated time; return the score.

        :param trace_every: every this many simulated seconds, add a line to :attr:`trace` (0: none).
        """
        if trace_every > 0:
            self._sample(trace_every, 0, 0)
        for task in range(self.cell.tasks):
            for _ in range(self.cell.workers):
                start = task * self.cell.stagger + self.rng.random() * 0.001
                self.at(start, self._worker(task).__next__)
        while self._events and self._events[0][0] <= self.cell.seconds:
            self.now, _, action = heapq.heappop(self._events)
            action()
        finished = (
            self.cell.work is not None
            and self.score.accepted + self.score.failed == self.cell.tasks * self.cell.work
        )
        self.score.seconds = max(self._done_at) if finished else self.cell.seconds
        return self.score

    def _sample(self, every: float, accepted: int, refused: int) -> None:
        score = self.score
        paces = ", ".join(f"{pacer.rate:7.2f}" for pacer in self.pacers)
        self.trace.append(
            f"{self.now:6.2f}s  accepted {(score.accepted - accepted) / every:7.1f}/s  "
            f"refused {score.refused - refused:4}  pace {paces}  "
            f"paused until {self.pacers[0].paused_until:.2f}"
        )
        counts = score.accepted, score.refused
        self.at(self.now + every, lambda: self._sample(every, *counts))

    def _worker(self, task: int) -> Iterator[None]:
        """One worker's requests, as a generator the events resume (each ``yield`` waits for an event)."""
        pacer = self.pacers[task]
        resume = None

        def wake() -> None:
            try:
                next(resume)  # type: ignore[call-overload]
            except StopIteration:
                pass

        def body() -> Iterator[None]:
            while self.cell.work is None or self._taken[task] < self.cell.work:
                self._taken[task] += 1
                first_refusal: float | None = None
                while True:
                    slot, wait = pacer.reserve()
                    if wait > 0:
                        self.at(self.now + wait + self.jitter.draw(self.rng), wake)
                        yield
                    if not pacer.confirm(slot):
                        continue
                    wait_for_token = self.bucket.take(self.now)
                    self.at(self.now + self.cell.latency, wake)
                    yield
                    refused = wait_for_token > 0
                    retry_after = (
                        float(retry_after_seconds(wait_for_token))
                        if refused and self.cell.retry_after
                        else None
                    )
                    pacer.record(slot, throttled=refused, retry_after=retry_after)
                    if not refused:
                        self.score.accepted += 1
                        self.score.per_task[task] += 1
                        self._done_at[task] = self.now
                        break
                    self.score.refused += 1
                    first_refusal = self.now if first_refusal is None else first_refusal
                    if self.now + (retry_after or 0.0) - first_refusal >= self.cell.throttle_timeout:
                        self.score.failed += 1
                        self._done_at[task] = self.now
                        break

        resume = body()
        return resume


def simulate(cell: Cell, *, jitter: Jitter = Jitter(), seed: int = 0, seeds: int = 1) -> Score:
    """Run one cell ``seeds`` times (seeds ``seed``, ``seed + 1``, ...); return the runs' sum."""
    total = Score(cell, per_task=[0] * cell.tasks)
    for offset in range(seeds):
        score = Simulation(cell, jitter=jitter, seed=seed + offset).run()
        total.accepted += score.accepted
        total.refused += score.refused
        total.failed += score.failed
        total.seconds += score.seconds
        total.per_task = [a + b for a, b in zip(total.per_task, score.per_task, strict=True)]
    return total


RATES: tuple[float, ...] = (5.0, 10.0, 50.0, 150.0, 200.0)
BURSTS: tuple[int, ...] = (1, 2, 5, 15, 20)
LATENCIES: tuple[float, ...] = (0.005, 0.01, 0.06, 0.1)
WORKERS: tuple[int, ...] = (4, 16, 64)


def grid(
    *,
    rates: Sequence[float] = RATES,
    bursts: Sequence[int] = BURSTS,
    latencies: Sequence[float] = LATENCIES,
    workers: Sequence[int] = WORKERS,
    retry_afters: Sequence[bool] = (True, False),
    seconds: float = 20.0,
) -> list[Cell]:
    """Every one-task cell, then three tasks (16 workers each) at each rate, burst 5, 20 ms.

    The three tasks have the real bench's work (``run_multi``: ``seconds * 1.5 / 3`` of the rate's requests
    each) and start a second apart (process start): the run ends when the last is done, so a task left
    alone must take the others' share back.
    """
    cells = [
        Cell(rate, burst, latency, retry_after, count, seconds=seconds)
        for rate, burst, latency, retry_after, count in itertools.product(
            rates, bursts, latencies, retry_afters, workers
        )
    ]
    cells += [
        Cell(
            rate,
            5,
            0.02,
            retry_after,
            16,
            tasks=3,
            seconds=seconds * 10,
            work=round(seconds * 1.5 * rate / 3),
            stagger=1.0,
        )
        for rate, retry_after in itertools.product(rates, retry_afters)
    ]
    return cells


def main(argv: Sequence[str] | None = None) -> int:
    """Score the grid (or one cell) and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="simulated seconds per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="runs of each cell (summed)")
    parser.add_argument("--all", action="store_true", help="print every cell, not only the misses")
    parser.add_argument("--no-jitter", action="store_true")
    parser.add_argument("--retry-after", choices=["yes", "no", "both"], default="both")
    parser.add_argument("--trace", type=float, default=0.0, help="one cell: print its course every N s")
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--bursts", type=int, nargs="+", default=list(BURSTS))
    parser.add_argument("--latencies", type=float, nargs="+", default=list(LATENCIES))
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS))
    args = parser.parse_args(argv)
    jitter = NO_JITTER if args.no_jitter else Jitter()
    cells = grid(
        rates=args.rates,
        bursts=args.bursts,
        latencies=args.latencies,
        workers=args.workers,
        retry_afters={"yes": (True,), "no": (False,), "both": (True, False)}[args.retry_after],
        seconds=args.seconds,
    )
    if args.trace:
        simulation = Simulation(cells[0], jitter=jitter, seed=args.seed)
        score = simulation.run(trace_every=args.trace)
        print("\n".join(simulation.trace))
        print(score.line())
        return 0
    scores = [simulate(cell, jitter=jitter, seed=args.seed, seeds=args.seeds) for cell in cells]
    for score in scores:
        if args.all or not score.met:
            print(score.line())
    one = [s for s in scores if s.cell.tasks == 1]
    multi = [s for s in scores if s.cell.tasks > 1]
    print(
        f"one task: {sum(s.met for s in one)} of {len(one)} cells met "
        f"(useful >= {ONE_TASK_USEFUL}: {sum(s.useful >= ONE_TASK_USEFUL for s in one)}, "
        f"429s <= {100 * ONE_TASK_THROTTLED:g}%: {sum(s.refused_share <= ONE_TASK_THROTTLED for s in one)}, "
        f"failed 0: {sum(not s.failed for s in one)}); "
        f"three tasks: {sum(s.met for s in multi)} of {len(multi)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
