"""bench/throughput.py's plain threaded clients, and the operator held against the best of them (issue 19)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from bench.api_process import ApiProcess
from bench.throughput import (
    REFERENCE,
    TARGET,
    THREADED_PREFIX,
    Measurement,
    ThroughputResult,
    threaded_httpx,
    threaded_requests,
)


def _run(name: str, seconds: float) -> Measurement:
    return Measurement(
        name=name, concurrency=8, seconds=seconds, requests=0, connections=0, server_seconds_median=0.0
    )


def test_the_operator_is_held_against_the_fastest_threaded_client_of_each_round() -> None:
    result = ThroughputResult(orders=10, latency=0.02, connect_latency=0.0)
    result.rounds = [
        [_run(f"{THREADED_PREFIX}a", 5.0), _run(f"{THREADED_PREFIX}b", 4.0), _run(REFERENCE, 6.0)],  # 1.5
        [_run(f"{THREADED_PREFIX}a", 4.0), _run(f"{THREADED_PREFIX}b", 8.0), _run(REFERENCE, 4.4)],  # 1.1
        [_run(f"{THREADED_PREFIX}a", 4.0), _run(f"{THREADED_PREFIX}b", 6.0), _run(REFERENCE, 6.0)],  # 1.5
    ]

    # the median of each round's ratio to its fastest threaded client (the slowest: 1.0; the mean: 1.37)
    assert result.against_threaded() == pytest.approx(1.5)


def test_without_the_threaded_clients_there_is_nothing_to_hold_the_operator_against() -> None:
    result = ThroughputResult(orders=10, latency=0.02, connect_latency=0.0)
    result.rounds = [[_run("GootenHook, sequential", 9.0), _run(REFERENCE, 6.0)]]

    assert result.against_threaded() is None


@pytest.mark.parametrize("client", [threaded_requests, threaded_httpx], ids=["requests", "httpx"])
def test_a_plain_threaded_client_changes_every_order_with_one_read_and_one_write(
    client: Callable[[int], Callable[[ApiProcess, Sequence[str]], None]],
) -> None:
    with ApiProcess(latency=0.005) as api:
        order_ids = api.add_orders(24)
        api.clear_journal()

        client(4)(api, order_ids)

        assert set(map(tuple, api.item_statuses(order_ids).values())) == {(TARGET,)}
        stats = api.stats()
        assert stats["requests"] == 48
        assert stats["connections"] <= 4  # pooled: a connection per thread at most, not one per request
