"""Turning Gooten's answers into data or into errors.

Gooten reports most errors inside HTTP 200 bodies (``"HadError": true``), a bad Recipe ID as a ``Message``,
and unknown routes as HTML pages; every case is checked on every response.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from gooten_provider.exceptions import (
    GootenApiError,
    GootenAuthenticationError,
    GootenErrorDetail,
    GootenHttpError,
    GootenOutcomeUnknownError,
    GootenRateLimitError,
)
from gooten_provider.redaction import redact, reveals_secret

EXCERPT_CHARS = 200
# Gooten's property name -> the connection field that holds it.
_CREDENTIAL_FIELDS = {
    "partnerbillingkey": "password (Partner Billing Key, unencoded, as the Gooten Admin shows it)",
    "recipeid": "login (Recipe ID)",
}


class HttpAnswer(Protocol):
    """What is read of an HTTP answer: a ``requests.Response`` and an ``httpx.Response`` both are one."""

    @property
    def status_code(self) -> int:
        """The HTTP status code."""

    @property
    def text(self) -> str:
        """The body as text."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The headers (case-insensitive in both libraries)."""

    def json(self) -> Any:
        """The body as JSON; raises ``ValueError`` when it is not JSON."""


#: Shown instead of a body that echoes the key in a form redaction cannot replace in place.
WITHHELD_BODY = "(body withheld: it echoes the Partner Billing Key)"


def body_excerpt(text: str, secrets: Iterable[str] = ()) -> str:
    """A short, single-line, secret-free excerpt of a response body for an error message.

    Known forms of the key are replaced by ``***``; if the key can still be read once the body is JSON-,
    HTML- or URL-decoded (an echo escaped in a way not foreseen), the body is not quoted at all.
    """
    secrets = tuple(secrets)
    flat = " ".join(redact(text, secrets).split())
    if reveals_secret(flat, secrets):
        return WITHHELD_BODY
    return flat if len(flat) <= EXCERPT_CHARS else f"{flat[:EXCERPT_CHARS]}..."


def _had_error(body: dict[str, Any]) -> bool:
    flag = body.get("HadError")
    return flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")


def _error_from_envelope(
    body: dict[str, Any], status: int, action: str, secrets: Iterable[str]
) -> GootenApiError:
    secrets = tuple(secrets)

    def clean(value: object) -> str | None:  # Gooten's texts are undocumented: never trust them with the key
        return None if value is None else redact(str(value), secrets)

    details = [
        GootenErrorDetail(clean(error.get("PropertyName")), clean(error.get("ErrorMessage")) or "no message")
        for error in body.get("Errors") or []
        if isinstance(error, dict)
    ]
    reference = clean(body.get("ErrorReferenceCode"))
    summary = "; ".join(str(d) for d in details) or "no error details given"
    message = f"Gooten refused {action}: {summary}"
    if reference:
        message += f" (ErrorReferenceCode {reference})"
    refused = {(d.property_name or "").lower() for d in details} & set(_CREDENTIAL_FIELDS)
    if refused:
        fields = " and ".join(_CREDENTIAL_FIELDS[name] for name in sorted(refused))
        message += f". Check the connection's {fields}."
        return GootenAuthenticationError(
            message, status_code=status, errors=details, error_reference_code=reference
        )
    return GootenApiError(message, status_code=status, errors=details, error_reference_code=reference)


def parse_response(
    response: HttpAnswer, *, action: str, is_write: bool, secrets: Iterable[str] = ()
) -> dict[str, Any]:
    """Return Gooten's JSON body, or raise the error it stands for.

    :param action: what was asked, for messages, e.g. ``"POST /api/orderstatus for order 1-ab"``.
    :param is_write: a 5xx answer to a write may still have been applied: it raises
        :class:`GootenOutcomeUnknownError` instead of a plain HTTP error.
    """
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if status == 429:
        raise GootenRateLimitError(
            f"Gooten answered 429 Too Many Requests to {action} after every retry; nothing was applied. "
            "Lower the request rate (requests_per_second, max_workers) and try again.",
            status_code=status,
        )
    if is_write and status >= 500:
        raise GootenOutcomeUnknownError(
            f"Gooten answered HTTP {status} to {action}; the change may or may not have been applied. "
            "Read the order to find out before sending it again.",
            status_code=status,
        )
    if isinstance(body, dict):
        if "invalid recipeid" in str(body.get("Message", "")).lower():
            raise GootenAuthenticationError(
                f"Gooten rejected the Recipe ID for {action} ('Invalid recipeId'): check the connection's "
                "login field (Recipe ID, from the Gooten Admin).",
                status_code=status,
            )
        if _had_error(body):
            raise _error_from_envelope(body, status, action, secrets)
    if status >= 300:  # redirects are not followed: the key must not travel to another URL
        raise GootenHttpError(
            f"Gooten answered HTTP {status} to {action}: {body_excerpt(response.text, secrets)!r}",
            status_code=status,
        )
    if not isinstance(body, dict):
        content_type = response.headers.get("Content-Type") or "no content type"
        if is_write:  # something answered, but not with Gooten's verdict: the change may have landed
            raise GootenOutcomeUnknownError(
                f"Gooten answered HTTP {status} to {action} with a body that is not Gooten's JSON "
                f"({content_type}): {body_excerpt(response.text, secrets)!r}; the change may or may not have "
                "been applied. Read the order to find out before sending it again.",
                status_code=status,
            )
        raise GootenHttpError(
            f"Gooten answered HTTP {status} to {action} with a body that is not Gooten's JSON "
            f"({content_type}): {body_excerpt(response.text, secrets)!r}",
            status_code=status,
        )
    return body
