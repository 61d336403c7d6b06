"""Keep the Partner Billing Key out of text that leaves the client: log records and error excerpts."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "***"

# urllib3 logs the request target, query string included, at DEBUG and on every retry warning.
_KEY_IN_QUERY = re.compile(r"(partnerBillingKey=)[^&\s'\"]*", re.IGNORECASE)
# A logger's filter sees only its own records, so every urllib3 logger gets one; these exist before use.
_URLLIB3_LOGGERS = (
    "urllib3",
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with any ``partnerBillingKey=`` value and each of ``secrets`` replaced by ``***``."""
    text = _KEY_IN_QUERY.sub(rf"\g<1>{REDACTED}", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class QueryKeyRedactingFilter(logging.Filter):
    """A log filter that removes the billing key from a record's message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_urllib3_log_redaction() -> None:
    """Attach the redacting filter to every urllib3 logger (once per logger)."""
    existing = [name for name in logging.root.manager.loggerDict if name.startswith("urllib3.")]
    for name in {*_URLLIB3_LOGGERS, *existing}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryKeyRedactingFilter) for f in logger.filters):
            logger.addFilter(QueryKeyRedactingFilter())
