"""The gateway's rate read from its answers across ``Retry-After`` pauses (``client/bucket_fit.py``).

Each case plays a client against the local API's real token bucket on a made-up clock: evenly spaced
requests at some pace until one is refused, a one-second pause, then again at another pace. Counted the
old way (accepted between two 429s over the time between them, pause included), such answers read far
under the rate; fitted, the range holds the rate.
"""

import random

import pytest

from gooten_provider.client.bucket_fit import AnswerHistory, _least_misfit
from gooten_provider.testing.throttling import TokenBucket


def play(rate: float, burst: int, paces: list[float], pause: float = 1.0) -> tuple[AnswerHistory, float]:
    """Send at each pace until the bucket refuses (then pause); return the history and the naive rate."""
    bucket = TokenBucket(rate, burst, 0.0)
    history = AnswerHistory()
    now, accepted, first_refusal = 0.0, 0, None
    for pace in paces:
        while True:
            refused = bucket.take(now) > 0
            history.add(now, refused=refused)
            if refused:
                history.refused_after_pause(now)
                first_refusal = now if first_refusal is None else first_refusal
                now += pause
                break
            accepted += first_refusal is not None
            now += 1 / pace
    assert first_refusal is not None
    return history, accepted / (now - pause - first_refusal)


@pytest.mark.parametrize(
    ("rate", "burst", "paces"),
    [
        (50.0, 5, [120.0, 78.0, 60.0]),
        (150.0, 15, [340.0, 257.0, 170.0]),
        (10.0, 5, [25.0, 12.0]),
        (200.0, 20, [260.0, 230.0, 215.0]),
    ],
)
def test_the_fitted_range_holds_the_rate_that_counting_across_the_pause_misses(rate, burst, paces):
    history, naive = play(rate, burst, paces)
    fitted = history.fit_rate(1.0, paces[-1])  # under the pace last refused, as the pacer seeks it
    assert fitted is not None
    least, most = fitted.least, fitted.most
    assert least * 0.97 <= rate <= most * 1.03
    assert most / least <= 1.25  # a range that paces, not "somewhere under the pace refused"
    assert naive < 0.85 * rate  # the measurement this replaces


def test_a_slow_crossing_pins_the_rate_within_a_few_percent():
    history, _ = play(50.0, 5, [120.0, 51.5])
    fitted = history.fit_rate(1.0, 51.5)
    assert fitted is not None
    least, most = fitted.least, fitted.most
    assert 0.97 * 50 <= least <= most <= 1.03 * 50


def test_one_time_the_bucket_was_found_empty_fits_every_rate():
    history = AnswerHistory()
    bucket = TokenBucket(50.0, 5, 0.0)
    now = 0.0
    while bucket.take(now) == 0:
        history.add(now, refused=False)
        now += 0.01
    history.add(now, refused=True)
    history.refused_after_pause(now)
    assert history.fit_rate(1.0, 100.0) is None


def test_answers_filed_out_of_order_fit_as_in_order():
    in_order, _ = play(50.0, 5, [120.0, 78.0])
    shuffled = AnswerHistory()
    answers = list(zip(in_order._tickets, in_order._refused, strict=True))
    for ticket, refused in answers[1::2] + answers[::2]:
        shuffled.add(ticket, refused=refused)
    for ticket in in_order._empty_after_pause:
        shuffled.refused_after_pause(ticket)
    assert shuffled.fit_rate(1.0, 120.0) == in_order.fit_rate(1.0, 120.0)


def test_the_best_burst_is_found_among_few_candidates():
    """The least misfit over every burst equals a brute-force search over a fine grid of bursts."""
    rng = random.Random(7)
    for _ in range(200):
        taken = sorted(rng.uniform(0, 30) for _ in range(rng.randint(1, 80)))
        met = sorted(rng.uniform(0, 30) for _ in range(rng.randint(1, 12)))
        brute = min(
            sum(max(0.0, t - b) for t in taken) + sum(max(0.0, b - m) for m in met)
            for b in [1.0, *taken, *met, *(1 + i / 20 for i in range(600))]
            if b >= 1
        )
        assert _least_misfit(taken, met) == pytest.approx(brute)
