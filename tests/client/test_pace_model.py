"""The pacer against gateway limits it is not told, on a fake clock (``bench/pace_model.py``). Each case runs
the real :class:`~gooten_provider.client.pacer.Pacer` with its workers, a latency and the arrival jitter of
threads against the local API's real token bucket for a simulated minute or two (about 0.1-1 s of real
time), and holds the targets of issue 19: one task reaches at least 0.90 of what is attainable with at most
5% of requests answered 429; three tasks on one account (no shared store) at least 0.80 with at most 10%.
The pacer of the first release (unpaced until the first 429, then CUBIC from the burst's rate) fails seven
of the other nine cases (72.9% of requests refused at R=10 burst 15 without ``Retry-After``, 33.9% at R=50
burst 5, 13.7% at R=10 burst 15 with it; three tasks 0.70 of the rate with 12.5% refused); the other two (a
high rate with a long latency, an account never throttled) guard against a slower pace. The four cases with
a ``Retry-After`` over two minutes hold the fit of the limit across pauses.
"""

import pytest

from bench.pace_model import Cell, Jitter, simulate


@pytest.mark.parametrize(
    "cell",
    [
        Cell(rate=10, burst=15, latency=0.01, retry_after=False, workers=16, seconds=60),
        Cell(rate=50, burst=5, latency=0.01, retry_after=False, workers=16, seconds=60),
        Cell(rate=10, burst=15, latency=0.06, retry_after=True, workers=64, seconds=60),
        Cell(rate=50, burst=15, latency=0.06, retry_after=True, workers=16, seconds=60),
        Cell(rate=150, burst=15, latency=0.06, retry_after=False, workers=64, seconds=60),
        # Two minutes against a limit that answers 429 with a Retry-After of a second: each 429 pauses
        # every worker, so the limit must be found in few. Counted across the pause (accepted between two
        # 429s over the time between them) it read 0.2-0.6 of the rate and the pace crept back for tens of
        # seconds: 0.80-0.85 here. Fitted to the answers (client/bucket_fit.py), three 429s find it.
        Cell(rate=150, burst=15, latency=0.01, retry_after=True, workers=16, seconds=120),
        Cell(rate=150, burst=5, latency=0.06, retry_after=True, workers=64, seconds=120),
        Cell(rate=50, burst=5, latency=0.01, retry_after=True, workers=16, seconds=120),
        Cell(rate=200, burst=20, latency=0.005, retry_after=True, workers=16, seconds=120),
    ],
    ids=lambda cell: cell.label(),
)
def test_one_task_holds_just_under_a_limit_it_is_not_told(cell):
    score = simulate(cell)
    assert score.failed == 0
    assert score.refused_share <= 0.05
    assert score.useful >= 0.90


@pytest.mark.parametrize("retry_after", [True, False], ids=["Retry-After", "no Retry-After"])
def test_three_tasks_share_one_account_without_a_shared_store(retry_after):
    score = simulate(
        Cell(rate=50, burst=5, latency=0.02, retry_after=retry_after, workers=16, tasks=3, seconds=60)
    )
    assert score.failed == 0
    assert score.refused_share <= 0.10
    assert score.useful >= 0.80


def test_three_tasks_with_their_own_work_take_back_the_share_of_one_done():
    """Each task has its own 300 requests, so the run lasts until the last is done: a task that the others'
    probes held down must take their share back once they are done. With holds doubled by other tasks' 429s
    (up to 120 s) and a probe that crawled past the pace last refused, 0.77 of the rate."""
    score = simulate(
        Cell(rate=10, burst=5, latency=0.02, retry_after=False, workers=16, tasks=3, seconds=600, work=300),
        seeds=2,
    )
    assert score.failed == 0
    assert score.refused_share <= 0.10
    assert score.useful >= 0.80


def test_a_cold_start_is_paced_not_a_clump():
    """64 workers against a burst of 1: the slow start refuses a few requests, not a clump of 63."""
    score = simulate(Cell(rate=10, burst=1, latency=0.01, retry_after=False, workers=64, seconds=2))
    assert score.refused <= 10


def test_an_account_never_throttled_pays_about_a_second_for_the_slow_start():
    score = simulate(Cell(rate=1e6, burst=20, latency=0.06, retry_after=False, workers=64, seconds=10))
    assert score.refused == 0
    assert score.useful >= 0.88  # W / L = 1,067 requests/s reached within about a second


def test_a_limit_fitted_from_the_jitter_of_a_burst_of_one_does_not_hold_the_pace_down():
    """Burst 1 at 150/s, threads often late: a 429 from two arrivals that came close together, right after
    a pause, fits a slow bucket with a deep burst (7/s, where the gateway takes 150/s). Crossed up to that
    range's top and held there, the pace stayed at 8/s (0.10 of the rate); one 429 now lowers the pace to
    no less than 0.4 of the pace refused, and a crossing that meets no 429 probes on."""
    score = simulate(
        Cell(rate=150, burst=1, latency=0.01, retry_after=True, workers=16, seconds=60),
        jitter=Jitter(typical=0.0005, spike_share=0.05, spike=0.006),
    )
    assert score.failed == 0
    assert score.useful >= 0.2
