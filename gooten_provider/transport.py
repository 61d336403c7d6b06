"""The HTTP session: connection pooling and retries that never replay a status change that may have landed.

urllib3's ``Retry`` does the work. Reads (GET) are retried on connection errors, read errors and
500/502/503/504. A write (POST) is re-sent only when it provably never took effect: the connection could not
be opened. urllib3 never retries a read error for a method outside ``allowed_methods``, so a POST whose
response was lost is not replayed. A 429 (nothing was applied) is retried here only when the client does not
pace itself (``adaptive_rate=False``); otherwise the client retries it, so that its rate controller sees it.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from gooten_provider import __version__
from gooten_provider.request_core import RETRYABLE_STATUSES, parse_retry_after

__all__ = ["RETRYABLE_STATUSES", "USER_AGENT", "build_retry", "build_session", "parse_retry_after"]

USER_AGENT = f"airflow-provider-gooten/{__version__}"


class GootenRetry(Retry):
    """urllib3 ``Retry`` that re-sends a POST only after a 429 it retries; a fractional, capped delay."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        """Retry reads on the usual statuses; retry a write only when refused with a 429 that is retried."""
        if self.allowed_methods is not None and method.upper() not in self.allowed_methods:
            return status_code == 429 and 429 in (self.status_forcelist or ())
        return super().is_retry(method, status_code, has_retry_after)

    def parse_retry_after(self, retry_after: str) -> float:
        """Accept ``Retry-After`` in seconds with a fraction (some servers send them) and cap it."""
        seconds = parse_retry_after(retry_after)
        return super().parse_retry_after(retry_after) if seconds is None else seconds


def build_retry(max_retries: int, backoff_factor: float, *, retry_throttled: bool = True) -> GootenRetry:
    """Exponential backoff (``backoff_factor * 2**n``) with jitter; statuses left for the caller to judge."""
    return GootenRetry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        other=0,
        redirect=0,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRYABLE_STATUSES if retry_throttled else RETRYABLE_STATUSES - {429},
        backoff_factor=backoff_factor,
        backoff_jitter=backoff_factor,
        backoff_max=30.0,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def build_session(
    *, max_retries: int, backoff_factor: float, pool_maxsize: int, retry_throttled: bool = True
) -> requests.Session:
    """One pooled session per client, shared by its worker threads.

    :param retry_throttled: let urllib3 retry 429s (up to ``max_retries``); off when the client paces itself.
    """
    session = requests.Session()
    retry = build_retry(max_retries, backoff_factor, retry_throttled=retry_throttled)
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    return session
