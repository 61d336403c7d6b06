"""The one retry policy of both clients: for any answer or wire failure, whether to send again and when.

=====================================  ================================  =====================================
What happened                          A read (GET)                      A write (POST, PUT)
=====================================  ================================  =====================================
connection refused, no pooled slot     sent again, backoff               sent again, backoff (it never left)
TLS handshake failed                   raised (a setting is wrong)       raised
no answer in time, connection broke,   sent again, backoff               raised: the outcome is unknown
answer cut off                                                           (the change engine settles it)
HTTP 500, 502, 503, 504                sent again, backoff (or a         raised: the outcome is unknown
                                       readable ``Retry-After``)
HTTP 2xx that is not Gooten's JSON     sent again, backoff               raised: the outcome is unknown
HTTP 429                               the pacer's (below)               the pacer's (nothing was applied)
anything else (Gooten's refusal, 4xx)  raised                            raised
=====================================  ================================  =====================================

A request is sent at most ``max_retries + 1`` times for the rows above, whatever their mixture. A 429 is not
counted there: it goes to the client's pacer, which lowers the pace and pauses every thread for a
``Retry-After``, and the request is sent again until ``throttle_timeout`` is spent (with ``adaptive_rate``
off, a 429 is counted as one more try, like a 5xx). The backoff before retry ``n`` (0 first) is
``backoff_factor * 2**n`` seconds, at most 30, plus up to ``backoff_factor`` of jitter. A ``Retry-After`` is
read as seconds (fractions allowed) or an HTTP date, capped at 60 s; anything else (negative, units, an
exponent, text, NaN) is ignored and the backoff applies.
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from gooten_provider.client.core import GootenRequest, TransportFailure
from gooten_provider.exceptions import GootenApiError, GootenHttpError

#: HTTP statuses after which a read is sent again (a gateway's or a server's passing trouble).
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
#: A ``Retry-After`` longer than this is cut to it, so one answer cannot stall a task for an hour.
MAX_RETRY_AFTER_SECONDS = 60.0
#: The longest backoff between two tries of a read, before jitter.
MAX_BACKOFF_SECONDS = 30.0

_SECONDS = re.compile(r"\s*\d+(\.\d+)?\s*")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds, fractions allowed, or an HTTP date), capped at 60.

    ``None`` when the header is absent or unreadable (negative, with units, an exponent, text, NaN): then the
    backoff applies. A date in the past is 0; one past the cap is the cap.

    :param now: the wall-clock time to count a date from (default: :func:`time.time`).
    """
    if value is None:
        return None
    if _SECONDS.fullmatch(value):
        seconds = float(value)
    else:
        try:
            date = parsedate_to_datetime(value.strip())
            seconds = date.timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


@dataclass(frozen=True)
class RetryPolicy:
    """Whether and when a request that failed is sent again (see the module's table).

    :param max_retries: tries after the first, for the retryable rows.
    :param backoff_factor: seconds of the first backoff; each next one doubles.
    :param adaptive_rate: 429s go to the pacer (bounded by ``throttle_timeout``); off, a 429 is one more try.
    """

    max_retries: int
    backoff_factor: float
    adaptive_rate: bool = True

    def is_retryable(
        self, request: GootenRequest, error: GootenApiError, failure: TransportFailure | None
    ) -> bool:
        """Whether this failure of this request may be sent again at all (within ``max_retries``)."""
        if failure is TransportFailure.NOT_SENT:
            return True  # the request never left: safe for a write too
        if isinstance(error, GootenHttpError) and error.status_code == 429:
            return not self.adaptive_rate  # nothing was applied; paced, a 429 is the pacer's, not a try
        if request.is_write or failure is TransportFailure.TLS:
            return False  # a write's outcome is the change engine's to settle; TLS will not mend itself
        if failure is not None:
            return True
        if not isinstance(error, GootenHttpError) or error.status_code is None:
            return False  # Gooten's own refusal, a credentials error: the same answer would come back
        status = error.status_code
        return status in RETRYABLE_STATUSES or status < 300

    def delay(
        self,
        request: GootenRequest,
        error: GootenApiError,
        failure: TransportFailure | None,
        *,
        tries: int,
        retry_after: float | None = None,
    ) -> float | None:
        """Seconds to wait before sending the request again, or ``None`` to raise ``error``.

        :param tries: how many times the request has been sent so far (1 after the first).
        :param retry_after: the answer's ``Retry-After`` in seconds, already read and capped.
        """
        if tries > self.max_retries or not self.is_retryable(request, error, failure):
            return None
        return max(self.backoff(tries - 1), retry_after or 0.0)

    def backoff(self, retry: int) -> float:
        """The wait before retry ``retry`` (0 first): ``backoff_factor * 2**retry``, capped, plus jitter."""
        base = min(self.backoff_factor * 2.0**retry, MAX_BACKOFF_SECONDS)
        return base + random.uniform(0, self.backoff_factor)  # noqa: S311 - jitter, not cryptography
