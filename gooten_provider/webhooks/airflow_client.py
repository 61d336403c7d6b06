"""Asset events through Airflow's public REST API, as the relay posts them.

* ``POST /auth/token`` with ``{"username", "password"}`` gives a JWT (Airflow's simple auth manager and the
  FAB auth manager both offer it); a token the user supplies is used as it is.
* ``GET /api/v2/assets?uri_pattern=<uri>`` finds the asset's numeric id (the events route takes the id,
  not the URI); the id is kept until Airflow answers 404 for it.
* ``POST /api/v2/assets/events`` with ``{"asset_id", "extra"}`` creates the event; Airflow adds
  ``"from_rest_api": true`` to ``extra`` and queues the DAGs scheduled on the asset.

Every failure is an :class:`AirflowDeliveryError` whose message says what happened and holds no secret
(the relay stores and logs it): response excerpts are cut short and every known secret is masked.

It is synchronous, on ``urllib3`` (one keep-alive connection; half the CPU time per request of
``requests``, which matters when hundreds of webhooks a second arrive): the relay calls it from its
delivery thread, so that its work stays off the event loop that answers Gooten. It connects to Airflow
directly, never through an HTTP proxy named in the environment, and checks HTTPS certificates against the
system's CA store (``SSL_CERT_FILE`` names another).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import urllib3

from gooten_provider.redaction import redact

TOKEN_PATH = "/auth/token"  # noqa: S105 - a route, not a secret
ASSETS_PATH = "/api/v2/assets"
EVENTS_PATH = "/api/v2/assets/events"
_PAGE = 100
_EXCERPT = 200


#: Answers to ``POST /api/v2/assets/events`` that retrying the same event cannot change: Airflow read the
#: request and refused it (400, 413, 422, ...). 401 and 403 (credentials), 404 (the asset was created again
#: under another id), 408, 409, 425 and 429 can pass on a later attempt, and so can every 5xx.
RETRYABLE_CLIENT_ERRORS = frozenset({401, 403, 404, 408, 409, 425, 429})


class AirflowDeliveryError(Exception):
    """Airflow did not take an event; the message is safe to log and store.

    :param permanent: Airflow refused this event for good (see :data:`RETRYABLE_CLIENT_ERRORS`): sending
        it again will be refused again, whereas other events may pass.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class _Reply:
    """An answer of Airflow: status and body."""

    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self, what: str) -> dict[str, Any]:
        """The body as a JSON object."""
        try:
            data = json.loads(self.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise AirflowDeliveryError(f"Airflow answered {what} with a body that is not a JSON object.")
        return data

    def detail(self) -> str | None:
        """FastAPI's short ``detail`` of an error (``"Forbidden"``, ``"Invalid JWT token"``), if any."""
        try:
            detail = json.loads(self.body).get("detail")
        except (ValueError, AttributeError):
            return None
        return detail if isinstance(detail, str) and len(detail) <= 80 else None


def _cause(error: BaseException) -> str:
    """The name of the innermost cause of a transport error (``ConnectionRefusedError``, ...)."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return type(error).__name__


@dataclass(frozen=True)
class AirflowCredentials:
    """How the relay authenticates: a ready JWT, or a username and password for ``POST /auth/token``."""

    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.token and not (self.username and self.password):
            raise ValueError(
                "Airflow credentials are missing: give an API token, or a username and a password "
                "(for POST /auth/token)."
            )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret values, for masking."""
        return tuple(value for value in (self.token, self.password) if value)


class AirflowEventsClient:
    """Creates events on one asset through Airflow's REST API (one HTTP/1.1 keep-alive connection).

    :param base_url: Airflow's API server, e.g. ``http://127.0.0.1:8080`` (the UI's address).
    :param asset_uri: the URI of the asset the events are for.
    :param credentials: see :class:`AirflowCredentials`.
    :param timeout: seconds to connect and to wait for each answer.
    :param secrets: more values to mask in error texts (the webhook token).
    """

    def __init__(
        self,
        base_url: str,
        asset_uri: str,
        credentials: AirflowCredentials,
        *,
        timeout: float = 10.0,
        secrets: Iterable[str] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.asset_uri = asset_uri
        self._credentials = credentials
        self._token = credentials.token
        self._asset_id: int | None = None
        self._secrets = {*credentials.secrets, *(value for value in secrets if value)}
        self._http = urllib3.PoolManager(
            num_pools=1, maxsize=1, retries=False, timeout=urllib3.Timeout(timeout)
        )

    def close(self) -> None:
        """Close the connection."""
        self._http.clear()

    def create_event(self, extra: dict[str, Any]) -> None:
        """Create one event on the asset with this ``extra``.

        :raises AirflowDeliveryError: Airflow is unreachable, refused the credentials, has no such asset,
            or answered anything but 2xx (``permanent`` when it refused this event for good).
        """
        asset_id = self._find_asset_id()
        reply = self._call("POST", EVENTS_PATH, body={"asset_id": asset_id, "extra": extra})
        if reply.status == 404:
            self._asset_id = None  # deleted and created again under another id: look it up next time
            raise AirflowDeliveryError(
                f"Airflow answered 404 to POST {EVENTS_PATH}: asset {self.asset_uri} (id {asset_id}) "
                "is gone; it is looked up again on the next attempt."
            )
        self._check(reply, f"POST {EVENTS_PATH}", about_the_event=True)

    def _find_asset_id(self) -> int:
        if self._asset_id is not None:
            return self._asset_id
        offset = 0
        while True:
            query = {"uri_pattern": self.asset_uri, "limit": _PAGE, "offset": offset}
            reply = self._call("GET", ASSETS_PATH, query=query)
            self._check(reply, f"GET {ASSETS_PATH}")
            page = reply.json(f"GET {ASSETS_PATH}").get("assets") or []
            for asset in page:
                if asset.get("uri") == self.asset_uri:
                    self._asset_id = int(asset["id"])
                    return self._asset_id
            if len(page) < _PAGE:
                raise AirflowDeliveryError(
                    f"Airflow has no asset {self.asset_uri}: no DAG schedules on it yet. Deploy a DAG with "
                    "schedule=[gooten_orders_asset] (gooten_provider.assets); events wait in the outbox "
                    "until Airflow has parsed it."
                )
            offset += _PAGE

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        query: Mapping[str, object] | None = None,
        token: str | None = None,
    ) -> _Reply:
        """One request; transport failures become :class:`AirflowDeliveryError`."""
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        try:
            answer = self._http.request(
                method,
                url,
                body=None if body is None else json.dumps(body).encode("utf-8"),
                headers=headers,
                redirect=False,
            )
        except urllib3.exceptions.NewConnectionError as error:
            raise AirflowDeliveryError(
                f"Airflow is unreachable at {self.base_url} for {method} {path} ({_cause(error)})."
            ) from None
        except urllib3.exceptions.TimeoutError:
            raise AirflowDeliveryError(
                f"Airflow at {self.base_url} did not answer {method} {path} in time."
            ) from None
        except urllib3.exceptions.HTTPError as error:
            raise AirflowDeliveryError(
                f"Airflow is unreachable at {self.base_url} for {method} {path} ({_cause(error)})."
            ) from None
        return _Reply(answer.status, answer.data)

    def _call(
        self, method: str, path: str, *, body: object = None, query: Mapping[str, object] | None = None
    ) -> _Reply:
        """Send a request with the bearer token.

        Airflow answers 401 to an expired token and 403 to one it cannot verify (signed with an old
        ``jwt_secret``, revoked): with a username and password, a token that was not fresh is dropped
        and the request sent once more after logging in again.
        """
        for attempt in (1, 2):
            fresh = self._token is None
            reply = self._send(method, path, body=body, query=query, token=self._bearer())
            renewable = not self._credentials.token and not fresh and attempt == 1
            if reply.status not in (401, 403) or not renewable:
                break
            self._token = None  # expired or no longer valid: log in again
        if reply.status == 401:
            raise AirflowDeliveryError(
                f"Airflow answered 401 Unauthorized to {method} {path}: "
                + (
                    "the API token was refused (expired?); give the relay a new one."
                    if self._credentials.token
                    else "a fresh token from POST /auth/token was refused."
                )
            )
        return reply

    def _bearer(self) -> str:
        if self._token:
            return self._token
        body = {"username": self._credentials.username, "password": self._credentials.password}
        reply = self._send("POST", TOKEN_PATH, body=body)
        if reply.status in (401, 403):
            raise AirflowDeliveryError(
                f"Airflow answered {reply.status} to POST {TOKEN_PATH}: it refused the username "
                f"{self._credentials.username!r} and its password."
            )
        self._check(reply, f"POST {TOKEN_PATH}")
        token = reply.json(f"POST {TOKEN_PATH}").get("access_token")
        if not isinstance(token, str) or not token:
            raise AirflowDeliveryError(f"Airflow's answer to POST {TOKEN_PATH} has no access_token.")
        self._token = token
        self._secrets.add(token)
        return token

    def _check(self, reply: _Reply, what: str, *, about_the_event: bool = False) -> None:
        """Raise :class:`AirflowDeliveryError` unless the answer is 2xx.

        :param about_the_event: the answer is to the event itself, so a 4xx refusal is the event's own
            (``permanent``); a refusal of a login or an asset lookup concerns every event alike.
        """
        if reply.ok:
            return
        if reply.status == 403:
            detail = reply.detail()
            raise AirflowDeliveryError(
                f"Airflow answered 403 Forbidden to {what}"
                + (f" ({detail})" if detail else "")
                + ": the token is not valid for this Airflow (signed with another jwt_secret, or revoked), "
                "or the relay's Airflow user may not read assets or create asset events."
            )
        excerpt = " ".join(reply.body.decode("utf-8", "replace").split())[:_EXCERPT]
        permanent = about_the_event and 400 <= reply.status < 500
        raise AirflowDeliveryError(
            redact(f"Airflow answered {reply.status} to {what}: {excerpt}", self._secrets),
            permanent=permanent and reply.status not in RETRYABLE_CLIENT_ERRORS,
        )
