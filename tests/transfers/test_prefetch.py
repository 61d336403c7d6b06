"""The export reads the next page while it writes the current one: order, errors and stopping kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from gooten_provider.transfers.prefetch import prefetched


def test_items_come_in_order_and_are_read_ahead_while_the_consumer_works() -> None:
    read_at: list[float] = []

    def pages() -> Iterator[int]:
        for number in range(5):
            time.sleep(0.05)  # a request
            read_at.append(time.monotonic())
            yield number

    started = time.monotonic()
    seen = []
    for number in prefetched(pages()):
        time.sleep(0.05)  # writing the page
        seen.append(number)

    assert seen == [0, 1, 2, 3, 4]
    # in turn it would take 10 x 50 ms; overlapped, about 6 x 50 ms
    assert time.monotonic() - started < 0.45
    assert read_at[1] - started < 0.15, "the second page was read while the first was written"


def test_an_error_of_the_reader_is_raised_where_its_item_would_have_come() -> None:
    def pages() -> Iterator[int]:
        yield 1
        raise ValueError("page 2 failed")

    seen = []
    with pytest.raises(ValueError, match="page 2 failed"):
        for number in prefetched(pages()):
            seen.append(number)
    assert seen == [1]


def test_a_consumer_that_stops_stops_the_reader() -> None:
    produced: list[int] = []

    def pages() -> Iterator[int]:
        for number in range(1000):
            produced.append(number)
            yield number

    iterator = prefetched(pages(), depth=1)
    assert next(iterator) == 0
    iterator.close()
    time.sleep(0.3)
    assert len(produced) <= 3, "the reader went on after the consumer stopped"
    assert not [t for t in threading.enumerate() if t.name == "gooten-export-prefetch"]
