"""Client defaults, apart from the client so that importing the hook (at DAG parse) loads no HTTP stack."""

from __future__ import annotations

#: Seconds to wait for a connection and for each response (Gooten's own clients wait 60).
DEFAULT_TIMEOUT = 30.0
#: Retries of a read, or of a write that never reached Gooten.
DEFAULT_MAX_RETRIES = 3
#: Retry delays grow as ``backoff_factor * 2**n`` seconds, plus jitter.
DEFAULT_BACKOFF_FACTOR = 0.5
#: Connections kept open per client: at least the number of threads sharing it.
DEFAULT_POOL_MAXSIZE = 32
#: Seconds a request keeps being retried while Gooten answers 429 (throttling), before it fails.
DEFAULT_THROTTLE_TIMEOUT = 300.0
