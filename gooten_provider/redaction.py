"""Keep the Partner Billing Key out of text that leaves the client: log records and error excerpts."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

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


_JSON_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _decoded_views(text: str) -> tuple[str, ...]:
    """The text as JSON, HTML and URL decoding show it (also a cut-off body, which no parser takes)."""
    json_decoded = _JSON_UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text).replace("\\/", "/")
    return (
        text,
        json_decoded,
        html.unescape(text),
        html.unescape(json_decoded),
        unquote_plus(json_decoded),
        # a gateway may percent-encode the Latin-1 bytes of a non-ASCII key (%E9), in any mix of hex cases
        unquote_plus(json_decoded, encoding="latin-1"),
    )


def reveals_secret(text: str, secrets: Iterable[str]) -> bool:
    """Tell whether any of ``secrets`` can be read in ``text`` once it is JSON-, HTML- or URL-decoded."""
    wanted = [secret for secret in secrets if secret]
    return any(secret in view for view in _decoded_views(text) for secret in wanted)


class QueryKeyRedactingFilter(logging.Filter):
    """A log filter that removes the billing key from a record's message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_log_redaction(names: Iterable[str]) -> None:
    """Attach the redacting filter to these loggers and their existing children (once per logger)."""
    names = tuple(names)
    existing = [
        name for name in logging.root.manager.loggerDict if any(name.startswith(f"{n}.") for n in names)
    ]
    for name in {*names, *existing}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QueryKeyRedactingFilter) for f in logger.filters):
            logger.addFilter(QueryKeyRedactingFilter())


def install_urllib3_log_redaction() -> None:
    """Attach the redacting filter to every urllib3 logger (once per logger)."""
    install_log_redaction(_URLLIB3_LOGGERS)
