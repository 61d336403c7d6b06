"""Errors raised by the Gooten client and hook.

Every error is a :class:`GootenApiError`, an ``AirflowException`` when Airflow is installed, so an Airflow
task that hits one fails (and retries, if it has retries); the client layer needs no Airflow. No message
ever holds the billing key or a request URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

try:
    from airflow.providers.common.compat.sdk import AirflowException
except ImportError:  # the client used on its own, without Airflow: the errors are plain exceptions then
    AirflowException = Exception  # type: ignore[assignment,misc]


@dataclass(frozen=True)
class GootenErrorDetail:
    """One entry of Gooten's ``Errors`` list: which property was wrong, and Gooten's message."""

    property_name: str | None
    error_message: str

    def __str__(self) -> str:
        return f"{self.property_name}: {self.error_message}" if self.property_name else self.error_message


class GootenApiError(AirflowException):
    """A Gooten API call failed.

    :param message: what failed, in words; never holds a secret.
    :param status_code: the HTTP status code, when Gooten answered.
    :param errors: Gooten's ``Errors`` entries, when its body had ``"HadError": true``.
    :param error_reference_code: Gooten's ``ErrorReferenceCode``, to quote to Gooten support.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: Sequence[GootenErrorDetail] = (),
        error_reference_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code  # type: ignore[assignment]  # AirflowException's is an HTTPStatus
        self.errors = tuple(errors)
        self.error_reference_code = error_reference_code


class GootenConfigurationError(GootenApiError):
    """The connection or the client settings are wrong; no request was made."""


class GootenAuthenticationError(GootenApiError):
    """Gooten refused the Recipe ID or the Partner Billing Key."""


class GootenHttpError(GootenApiError):
    """Gooten answered with an HTTP error status, or with a body that is not Gooten's JSON."""


class GootenRateLimitError(GootenHttpError):
    """Gooten kept answering 429 (too many requests) after every retry; the request was not applied."""


class GootenConnectionError(GootenApiError):
    """Gooten could not be reached, or a read failed; for a write this means it was never sent."""


class GootenIncompleteAnswerError(GootenConnectionError):
    """The connection broke while an answer was being read (a read is tried again before this is raised)."""


class GootenOutcomeUnknownError(GootenApiError):
    """A status change may or may not have been applied: its response was lost or was a 5xx.

    Never re-send the change blindly: read the order to learn whether it took effect.
    """


class GootenOrderItemsError(GootenApiError, ValueError):
    """Item ids given for an order are not among its items (found by reading it); nothing was changed.

    A ``ValueError`` too: the call named items the order does not have, so sending it again cannot help.
    """


class GootenItemsNotCancellableError(GootenApiError):
    """An order's items are in a status Gooten allows no item cancellation from; nothing was sent."""
