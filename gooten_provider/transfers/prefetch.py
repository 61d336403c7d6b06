"""Read the next search page while the current one is written: an iterator run one item ahead in a thread.

An export alternates between waiting for Gooten (a page is a request) and working (parsing, cutting each
order down, compressing, writing). Done in turn, each page costs the sum of both, and a task paced at the
account's rate falls behind it. With the next page read in a thread meanwhile, a page costs the longer of
the two. At most ``depth`` pages wait in memory besides the one being written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_SECONDS = 0.1


class _Producer:
    """The background thread's side: reads the items into a bounded queue until done or told to stop."""

    def __init__(self, items: Iterator[T], depth: int) -> None:
        self.items = items
        self.waiting: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

    def put(self, value: object) -> bool:
        """Queue one value, waiting for room; ``False`` once the consumer is gone."""
        while not self.stop.is_set():
            try:
                self.waiting.put(value, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def run(self) -> None:
        try:
            for item in self.items:
                if not self.put(item):
                    return
        except BaseException as error:  # handed to the consumer, which raises it
            self.put(error)
            return
        self.put(_DONE)


def prefetched(items: Iterator[T], depth: int = 1, name: str = "gooten-export-prefetch") -> Iterator[T]:
    """Yield ``items`` in order, reading up to ``depth`` of them ahead in a background thread.

    An exception of ``items`` is raised here, where the item would have come. Closing this iterator early
    (the consumer failed) stops the thread once the item it is reading has come (not waited for: a read may
    be waiting out a throttle).
    """
    producer = _Producer(items, depth)
    thread = threading.Thread(target=producer.run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            value = producer.waiting.get()
            if value is _DONE:
                return
            if isinstance(value, BaseException):
                raise value
            yield value  # type: ignore[misc]  # anything else is an item
    finally:
        producer.stop.set()
