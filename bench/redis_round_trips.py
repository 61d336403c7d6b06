"""Redis round trips per paced request through the shared pace, counted command by command.

A real ``redis-server`` on 127.0.0.1 (``LocalRedisServer``) and the real ``Pacer`` on a
``FallbackPaceStore(RedisPaceStore)``, whose Redis client counts every command it sends (each one round trip:
the store sends no pipelines). Each thread sends requests in a row (acquire, an answer ``latency`` seconds
later, record, all accepted), on a fresh account per scenario, after one request that loads the script.

``python -m bench.redis_round_trips`` prints, per scenario (threads x answer latency), the round trips per
request and which of the store's operations they were.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis

from gooten_provider.client.pacer import Pacer
from gooten_provider.client.redis_store import RedisPaceStore
from gooten_provider.client.shared_store import FallbackPaceStore
from gooten_provider.testing.redis_server import LocalRedisServer


class CountingRedis(redis.Redis):
    """A Redis client that keeps every command it sends: the name, and the store's operation if a script's."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self.commands: list[str] = []
        #: The store's operation of each script run (its first argument after the key), in order.
        self.operations: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Count the command, then send it."""
        with self._lock:
            self.commands.append(str(args[0]))
            if args[0] in ("EVALSHA", "EVAL") and len(args) > 3 + int(args[2]):
                operation = args[3 + int(args[2])]
                self.operations.append(operation.decode() if isinstance(operation, bytes) else str(operation))
        return super().execute_command(*args, **options)


def run_scenario(
    server: LocalRedisServer, recipe_id: str, *, threads: int, latency: float, requests: int
) -> tuple[float, collections.Counter[str]]:
    """Round trips per request of ``threads`` threads sending ``requests`` each; and the operations run."""
    client = CountingRedis(**server.client_kwargs())
    pacer = Pacer(store=FallbackPaceStore(RedisPaceStore(client, recipe_id)))
    pacer.record(pacer.acquire(), throttled=False)  # the script loaded, the pace started
    sent, ran = len(client.commands), len(client.operations)

    def send() -> None:
        for _ in range(requests):
            ticket = pacer.acquire()
            time.sleep(latency)
            pacer.record(ticket, throttled=False)

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    client.close()
    total = threads * requests
    return (len(client.commands) - sent) / total, collections.Counter(client.operations[ran:])


def main(argv: Sequence[str] | None = None) -> int:
    """Count every scenario's round trips and print one line each."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.02], help="seconds per answer")
    parser.add_argument("--requests", type=int, default=100, help="per thread")
    args = parser.parse_args(argv)
    with LocalRedisServer() as server:
        for number, (threads, latency) in enumerate(itertools.product(args.threads, args.latencies)):
            per_request, operations = run_scenario(
                server, f"round-trips-{number}", threads=threads, latency=latency, requests=args.requests
            )
            print(
                f"{threads} thread(s), answers after {latency * 1000:.0f} ms: {per_request:.2f} round trips "
                f"per request ({', '.join(f'{op} {n}' for op, n in sorted(operations.items()))})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
