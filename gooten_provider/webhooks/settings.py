"""The relay's settings, and its secrets read from the environment or from files, never from arguments.

Secrets (the webhook token, Airflow's token or password) come from an environment variable or from a
file named by an option or an environment variable (a systemd credential, a container secret). Command
lines are visible to every user of the machine (``ps``), so no secret is ever an argument.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gooten_provider.asset_uri import ORDERS_URI
from gooten_provider.webhooks.airflow_client import AirflowCredentials

# Names of environment variables, not secrets.
TOKEN_ENV = "GOOTEN_RELAY_TOKEN"  # noqa: S105
TOKEN_FILE_ENV = "GOOTEN_RELAY_TOKEN_FILE"  # noqa: S105
AIRFLOW_URL_ENV = "GOOTEN_RELAY_AIRFLOW_URL"
AIRFLOW_TOKEN_ENV = "GOOTEN_RELAY_AIRFLOW_TOKEN"  # noqa: S105
AIRFLOW_TOKEN_FILE_ENV = "GOOTEN_RELAY_AIRFLOW_TOKEN_FILE"  # noqa: S105
AIRFLOW_USERNAME_ENV = "GOOTEN_RELAY_AIRFLOW_USERNAME"
AIRFLOW_PASSWORD_ENV = "GOOTEN_RELAY_AIRFLOW_PASSWORD"  # noqa: S105
AIRFLOW_PASSWORD_FILE_ENV = "GOOTEN_RELAY_AIRFLOW_PASSWORD_FILE"  # noqa: S105

#: The shortest webhook token accepted: 32 URL-safe characters are 192 bits of randomness.
MIN_TOKEN_LENGTH = 32
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
#: The route Gooten posts to: ``/gooten/webhook/<token>?orderid=``.
WEBHOOK_PATH = "/gooten/webhook"


def new_token() -> str:
    """A fresh webhook token: 43 URL-safe characters (256 bits)."""
    return secrets.token_urlsafe(32)


def check_token(token: str) -> str:
    """Return the token if it is long and URL-safe enough to be the secret of the webhook URL.

    :raises ValueError: it is too short or has characters that would need encoding in a URL path; the
        message never repeats the token.
    """
    if len(token) < MIN_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
        raise ValueError(
            f"The webhook token must be at least {MIN_TOKEN_LENGTH} characters of A-Z, a-z, 0-9, '-' and "
            f"'_' (the one given has {len(token)} characters); generate one with "
            "`python -m gooten_provider.webhooks --new-token`."
        )
    return token


def read_secret(
    environ: Mapping[str, str], variable: str, file_variable: str, file_path: str | None = None
) -> str | None:
    """A secret from a file (``file_path``, else the file named by ``file_variable``) or ``variable``.

    Surrounding whitespace (a file's final newline) is dropped. Returns ``None`` when none is set.

    :raises ValueError: the file cannot be read, or it or the variable is empty.
    """
    path = file_path or environ.get(file_variable)
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"Cannot read the secret file {path}: {error.__class__.__name__}.") from None
        if not value:
            raise ValueError(f"The secret file {path} is empty.")
        return value
    if variable in environ:
        value = environ[variable].strip()
        if not value:
            raise ValueError(f"The environment variable {variable} is empty.")
        return value
    return None


@dataclass(frozen=True)
class RelaySettings:
    """Everything the relay needs to run.

    :param token: the secret part of the webhook URL.
    :param airflow_url: Airflow's API server (the UI's address).
    :param airflow_credentials: a token, or a username and password for ``POST /auth/token``.
    :param outbox_path: the SQLite outbox file.
    :param asset_uri: the asset the events are for.
    :param dedupe_window: seconds within which an exact duplicate of an order's latest change collapses.
    :param read_timeout: seconds the whole request body may take to arrive (then 408).
    :param retry_initial: seconds to wait after a first failed delivery (then doubling).
    :param retry_max: the longest wait between two delivery attempts.
    :param airflow_timeout: seconds to wait for each answer of Airflow.
    :param include_nice_id: put Gooten's ``NiceId`` in events; Gooten starts it with the first letters of
        the recipient's first name (``Richa13-cd4``), so a deployment may prefer to leave it out.
    :param park_after: refusals for good (a 422, say) of one change after which it is parked, so that
        the changes after it are delivered.
    """

    token: str = field(repr=False)
    airflow_url: str
    airflow_credentials: AirflowCredentials
    outbox_path: Path
    asset_uri: str = ORDERS_URI
    dedupe_window: float = 600.0
    read_timeout: float = 10.0
    retry_initial: float = 1.0
    retry_max: float = 60.0
    airflow_timeout: float = 10.0
    include_nice_id: bool = True
    park_after: int = 5

    def __post_init__(self) -> None:
        check_token(self.token)
        if not (isinstance(self.park_after, int) and self.park_after >= 1):
            raise ValueError(f"park_after must be 1 or more refusals, got {self.park_after!r}.")
        if not self.airflow_url.startswith(("http://", "https://")):
            raise ValueError(
                f"The Airflow URL must start with http:// or https://, got {self.airflow_url!r} "
                "(the address of Airflow's UI and REST API, e.g. http://127.0.0.1:8080)."
            )
        for name in ("dedupe_window", "read_timeout", "retry_initial", "retry_max", "airflow_timeout"):
            value = getattr(self, name)
            if not value > 0 and not (name == "dedupe_window" and value == 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}.")
        if self.retry_initial > self.retry_max:
            raise ValueError(
                f"The first retry delay ({self.retry_initial:g} s) must not exceed the longest "
                f"({self.retry_max:g} s): lower --retry-initial or raise --retry-max."
            )


def airflow_credentials(
    environ: Mapping[str, str],
    *,
    username: str | None = None,
    token_file: str | None = None,
    password_file: str | None = None,
) -> AirflowCredentials:
    """Airflow credentials from the environment and files: a token wins over a username and password.

    :raises ValueError: none are given, a file cannot be read, or a password has no username.
    """
    token = read_secret(environ, AIRFLOW_TOKEN_ENV, AIRFLOW_TOKEN_FILE_ENV, token_file)
    username = username or environ.get(AIRFLOW_USERNAME_ENV) or None
    password = read_secret(environ, AIRFLOW_PASSWORD_ENV, AIRFLOW_PASSWORD_FILE_ENV, password_file)
    if token:
        return AirflowCredentials(token=token)
    if username and password:
        return AirflowCredentials(username=username, password=password)
    if password:
        raise ValueError(
            f"An Airflow password is set but no username: set {AIRFLOW_USERNAME_ENV} or --airflow-username."
        )
    raise ValueError(
        "No Airflow credentials: set "
        f"{AIRFLOW_TOKEN_ENV} (or {AIRFLOW_TOKEN_FILE_ENV}, --airflow-token-file) to an API token, or "
        f"{AIRFLOW_USERNAME_ENV} (--airflow-username) and {AIRFLOW_PASSWORD_ENV} "
        f"(or {AIRFLOW_PASSWORD_FILE_ENV}, --airflow-password-file)."
    )
