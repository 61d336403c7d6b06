"""bench/export.py's throttle timeline: each 429 of a run, when it came and what the gateway let through."""

from __future__ import annotations

from bench.export import throttle_timeline


def test_each_429_is_placed_after_the_first_request_with_what_came_before_it() -> None:
    # the journal's order is not the requests' (entries are written as answers finish)
    timeline = [(11.0, False), (10.0, False), (10.5, False), (12.0, True), (13.0, False), (14.0, False)]
    timeline += [(14.5, True), (15.0, False), (16.0, False), (17.0, False)]

    lines = throttle_timeline(timeline)

    assert lines == [
        "t=    2.00 s  429 #1: 3 accepted since the first request over 2.00 s (1.5/s)",
        "t=    4.50 s  429 #2: 2 accepted since 429 #1 over 2.50 s (0.8/s)",
        "then 3 accepted over 2.50 s after the last 429 (1.2/s)",
    ]


def test_a_run_without_429_says_so_and_two_429s_at_once_have_no_rate() -> None:
    assert throttle_timeline([(1.0, False), (3.0, False)]) == [
        "then 2 accepted over 2.00 s after the first request (no 429) (1.0/s)"
    ]
    assert throttle_timeline([(1.0, True), (1.0, True)])[:2] == [
        "t=    0.00 s  429 #1: 0 accepted since the first request over 0.00 s (at once)",
        "t=    0.00 s  429 #2: 0 accepted since 429 #1 over 0.00 s (at once)",
    ]
    assert throttle_timeline([]) == ["no requests"]
