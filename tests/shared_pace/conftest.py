"""A real ``redis-server`` on a free port of 127.0.0.1 for each test that asks for one.

``make test`` installs Debian's redis-server when it is missing (scripts/install-stack-deps.sh); a test is
skipped, saying why, only when no redis-server can be found at all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gooten_provider.testing.redis_server import LocalRedisServer, redis_server_binary


@pytest.fixture
def redis_server() -> Iterator[LocalRedisServer]:
    """A started ``redis-server`` with a random password, stopped after the test."""
    if redis_server_binary() is None:
        pytest.skip(
            "no redis-server on PATH: `sh scripts/install-stack-deps.sh redis` (make test runs it) installs "
            "Debian's redis-server, or set GOOTEN_REDIS_SERVER to a binary"
        )
    server = LocalRedisServer().start()
    try:
        yield server
    finally:
        server.stop()
