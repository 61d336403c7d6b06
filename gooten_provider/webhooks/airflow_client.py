"""Asset events through Airflow's public REST API, as the relay posts them.

* ``POST /auth/token`` with ``{"username", "password"}`` gives a JWT (Airflow's simple auth manager and the
  FAB auth manager both offer it); a token the user supplies is used as it is.
* ``GET /api/v2/assets?uri_pattern=<uri>`` finds the asset's numeric id (the events route takes the id,
  not the URI); the id is kept until Airflow answers 404 for it.
* ``POST /api/v2/assets/events`` with ``{"asset_id", "extra"}`` creates the event; Airflow adds
  ``"from_rest_api": true`` to ``extra`` and queues the DAGs scheduled on the asset.

Every failure is an :class:`AirflowDeliveryError` whose message says what happened and holds no secret
(the relay stores and logs it): response excerpts are cut short and every known secret is masked.

It is synchronous (``requests``, one keep-alive connection): the relay calls it from its delivery thread,
so that its CPU time stays off the event loop that answers Gooten. It connects to Airflow directly,
never through an HTTP proxy named in the environment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests

from gooten_provider.redaction import redact

TOKEN_PATH = "/auth/token"  # noqa: S105 - a route, not a secret
ASSETS_PATH = "/api/v2/assets"
EVENTS_PATH = "/api/v2/assets/events"
_PAGE = 100
_EXCERPT = 200


def _json_detail(reply: requests.Response) -> str | None:
    """FastAPI's short ``detail`` of an error answer (``"Forbidden"``, ``"Invalid JWT token"``), if any."""
    try:
        detail = reply.json().get("detail")
    except (ValueError, AttributeError):
        return None
    return detail if isinstance(detail, str) and len(detail) <= 80 else None


class AirflowDeliveryError(Exception):
    """Airflow did not take an event; the message is safe to log and store."""


def _json(reply: requests.Response, what: str) -> dict[str, Any]:
    """The JSON object of a successful answer."""
    try:
        body = reply.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AirflowDeliveryError(f"Airflow answered {what} with a body that is not a JSON object.")
    return body


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
    """Creates events on one asset through Airflow's REST API (one HTTP/1.1 connection pool).

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
        self.timeout = timeout
        self._http = requests.Session()
        self._http.trust_env = False  # no proxy from the environment: Airflow is reached directly

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def create_event(self, extra: dict[str, Any]) -> None:
        """Create one event on the asset with this ``extra``.

        :raises AirflowDeliveryError: Airflow is unreachable, refused the credentials, has no such asset,
            or answered anything but 2xx.
        """
        asset_id = self._find_asset_id()
        body = {"asset_id": asset_id, "extra": extra}
        reply = self._call("POST", EVENTS_PATH, json=body)
        if reply.status_code == 404:
            self._asset_id = None  # deleted and created again under another id: look it up next time
            raise AirflowDeliveryError(
                f"Airflow answered 404 to POST {EVENTS_PATH}: asset {self.asset_uri} (id {asset_id}) "
                "is gone; it is looked up again on the next attempt."
            )
        self._check(reply, f"POST {EVENTS_PATH}")

    def _find_asset_id(self) -> int:
        if self._asset_id is not None:
            return self._asset_id
        offset = 0
        while True:
            params: dict[str, str | int] = {"uri_pattern": self.asset_uri, "limit": _PAGE, "offset": offset}
            reply = self._call("GET", ASSETS_PATH, params=params)
            self._check(reply, f"GET {ASSETS_PATH}")
            page = _json(reply, f"GET {ASSETS_PATH}").get("assets") or []
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

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a request with the bearer token.

        Airflow answers 401 to an expired token and 403 to one it cannot verify (signed with an old
        ``jwt_secret``, revoked): with a username and password, a token that was not fresh is dropped
        and the request sent once more after logging in again.
        """
        for attempt in (1, 2):
            fresh = self._token is None
            headers = {"Authorization": f"Bearer {self._bearer()}"}
            try:
                reply = self._http.request(
                    method,
                    self.base_url + path,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    **kwargs,
                )
            except requests.Timeout as error:
                raise AirflowDeliveryError(
                    f"Airflow at {self.base_url} did not answer {method} {path} in time "
                    f"({type(error).__name__})."
                ) from None
            except requests.RequestException as error:
                raise AirflowDeliveryError(
                    f"Airflow is unreachable at {self.base_url} for {method} {path} ({type(error).__name__})."
                ) from None
            renewable = not self._credentials.token and not fresh and attempt == 1
            if reply.status_code not in (401, 403) or not renewable:
                break
            self._token = None  # expired or no longer valid: log in again
        if reply.status_code == 401:
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
        try:
            reply = self._http.post(self.base_url + TOKEN_PATH, json=body, timeout=self.timeout)
        except requests.RequestException as error:
            raise AirflowDeliveryError(
                f"Airflow is unreachable at {self.base_url} for POST {TOKEN_PATH} ({type(error).__name__})."
            ) from None
        if reply.status_code in (401, 403):
            raise AirflowDeliveryError(
                f"Airflow answered {reply.status_code} to POST {TOKEN_PATH}: it refused the username "
                f"{self._credentials.username!r} and its password."
            )
        self._check(reply, f"POST {TOKEN_PATH}")
        token = _json(reply, f"POST {TOKEN_PATH}").get("access_token")
        if not isinstance(token, str) or not token:
            raise AirflowDeliveryError(f"Airflow's answer to POST {TOKEN_PATH} has no access_token.")
        self._token = token
        self._secrets.add(token)
        return token

    def _check(self, reply: requests.Response, what: str) -> None:
        if 200 <= reply.status_code < 300:
            return
        if reply.status_code == 403:
            detail = _json_detail(reply)
            raise AirflowDeliveryError(
                f"Airflow answered 403 Forbidden to {what}"
                + (f" ({detail})" if detail else "")
                + ": the token is not valid for this Airflow (signed with another jwt_secret, or revoked), "
                "or the relay's Airflow user may not read assets or create asset events."
            )
        excerpt = " ".join(reply.text.split())[:_EXCERPT]
        raise AirflowDeliveryError(
            redact(f"Airflow answered {reply.status_code} to {what}: {excerpt}", self._secrets)
        )
