"""What both Gooten clients share: settings, request core, retry policy, pacer, and the steps of one call.

:class:`~gooten_provider.client.GootenClient` (``requests``, threads) and
:class:`~gooten_provider.async_client.AsyncGootenClient` (``httpx``, an event loop) differ only in how they
send a request, map their library's errors and wait. Each runs the same loop::

    call = self.call(request)
    while True:
        ticket = pacer.acquire()                         # the one wait before each send
        step = call.answered(ticket, answer) or call.failed(failure, cause)
        if step.body is not None: return step.body
        if step.error is not None: raise step.error
        sleep(step.delay)                                # a retry's backoff (a 429's wait is the pacer's)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gooten_provider.client.core import GootenRequest, RequestCore, TransportFailure
from gooten_provider.client.pacer import Pacer, PaceStore
from gooten_provider.client.responses import HttpAnswer
from gooten_provider.client.retry import RetryPolicy, parse_retry_after
from gooten_provider.client.settings import ClientSettings
from gooten_provider.exceptions import GootenApiError, GootenConfigurationError


@dataclass(frozen=True)
class Step:
    """What a transport does next: return ``body``, raise ``error``, or wait ``delay`` and send again."""

    body: dict[str, Any] | None = None
    error: GootenApiError | None = None
    delay: float = 0.0


class Call:
    """The tries of one request: each answer or failure in, the next :class:`Step` out (no I/O).

    :param client: the client whose core, policy and pacer decide.
    :param request: the request being sent.
    """

    def __init__(self, client: GootenClientBase, request: GootenRequest) -> None:
        self._core, self._policy, self._pacer = client.core, client.policy, client.pacer
        self.request = request
        #: Times the request was sent, 429s aside (they are the pacer's, bounded by throttle_timeout).
        self.tries = 0
        self._throttle = self._pacer.throttle_window(request.action, client.settings.throttle_timeout)

    def answered(self, ticket: float, answer: HttpAnswer) -> Step:
        """Gooten (or something in between) answered: the body, or what to do about the error."""
        retry_after = parse_retry_after(answer.headers.get("Retry-After"))
        throttled = answer.status_code == 429
        self._pacer.record(ticket, throttled=throttled, retry_after=retry_after)
        if throttled and self._policy.adaptive_rate:
            try:
                self._throttle.throttled(retry_after)
            except GootenApiError as exc:
                return Step(error=exc)
            return Step()  # the pacer holds it: its Retry-After pause, then a paced slot
        self.tries += 1
        try:
            return Step(body=self._core.parse(answer, self.request))
        except GootenApiError as exc:
            return self._after(exc, None, retry_after)

    def failed(self, failure: TransportFailure, cause: str) -> Step:
        """The request failed on the wire (``cause``: the innermost exception's class name)."""
        self.tries += 1
        error = self._core.transport_error(failure, self.request, cause=cause, attempts=self.tries)
        return self._after(error, failure, None)

    def _after(
        self, error: GootenApiError, failure: TransportFailure | None, retry_after: float | None
    ) -> Step:
        delay = self._policy.delay(self.request, error, failure, tries=self.tries, retry_after=retry_after)
        return Step(error=error) if delay is None else Step(delay=delay)


class GootenClientBase:
    """The settings, core, retry policy and pacer of a Gooten client; a transport subclass sends.

    Takes a :class:`~gooten_provider.client.settings.ClientSettings`, or its fields as keyword arguments:
    ``recipe_id``, ``billing_key``, then ``base_url``, ``port``, ``timeout``, ``max_retries``,
    ``backoff_factor``, ``adaptive_rate``, ``throttle_timeout``, ``pool_maxsize`` and
    ``requests_per_second`` (each checked there, once, for both clients).

    ``pace_store`` shares the pace with other clients (e.g. every task of the account, through
    :class:`~gooten_provider.client.redis_store.RedisPaceStore`); it needs ``adaptive_rate``, since the
    shared rate is learnt from Gooten's 429s. Unset, the client paces itself.
    """

    def __init__(
        self,
        recipe_id: str | None = None,
        billing_key: str | None = None,
        *,
        settings: ClientSettings | None = None,
        pace_store: PaceStore | None = None,
        **options: Any,
    ) -> None:
        if settings is None:
            settings = ClientSettings(recipe_id, billing_key, **options)  # type: ignore[arg-type]
        elif recipe_id is not None or billing_key is not None or options:
            raise TypeError("Give either settings or the settings' fields, not both.")
        if pace_store is not None and not settings.adaptive_rate:
            raise GootenConfigurationError(
                "A shared pace (rate_limit_conn_id) needs adaptive_rate: the shared rate is learnt from "
                "Gooten's 429s. Turn adaptive_rate on, or leave rate_limit_conn_id unset."
            )
        #: The client's checked settings.
        self.settings = settings
        #: The sans-I/O core (requests, answers, errors).
        self.core = RequestCore(settings)
        #: When a failed request is sent again.
        self.policy = RetryPolicy(settings.max_retries, settings.backoff_factor, settings.adaptive_rate)
        #: The pace every request of this client shares (threads or coroutines).
        self.pacer = Pacer(
            adaptive=settings.adaptive_rate, ceiling=settings.requests_per_second, store=pace_store
        )
        self.recipe_id = settings.recipe_id
        self.base_url = self.core.base_url
        self.timeout = settings.timeout
        self.max_retries = settings.max_retries
        self.backoff_factor = settings.backoff_factor
        self.throttle_timeout = settings.throttle_timeout
        #: Requests sent (tries and 429s included), for tests and benchmarks.
        self.requests_sent = 0
        self._open_transport()

    def _open_transport(self) -> None:
        """Set up the HTTP library's pooled connections (each transport its own)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, recipe_id={self.recipe_id!r})"

    @property
    def secret_forms(self) -> tuple[str, ...]:
        """Every form of the billing key that must be masked wherever text is shown (raw and encoded)."""
        return self.core.secret_forms

    def call(self, request: GootenRequest) -> Call:
        """The steps of sending ``request`` until it has an answer, or an error to raise."""
        return Call(self, request)
