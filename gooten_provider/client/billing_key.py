"""The Partner Billing Key: how it is sent, and every form of it that must never be shown.

Gooten wants the key URL-encoded exactly once in the query string. ``requests`` does that encoding, so the
client hands it the raw key. Gooten's docs tell users to encode the key themselves, so a key is sometimes
stored already encoded; sent as is it would be encoded twice and refused.
"""

from __future__ import annotations

import itertools
import logging
import re
from urllib.parse import quote, quote_plus, unquote

log = logging.getLogger(__name__)

# Base64 keys never contain "%", so a percent escape means the key was stored encoded.
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def prepare_billing_key(key: str) -> str:
    """Return the raw key to hand to ``requests``, decoding once a key that was stored URL-encoded."""
    key = key.strip()
    if _PERCENT_ESCAPE.search(key):
        log.warning(
            "The Partner Billing Key looks URL-encoded already; it was decoded once so that it is sent "
            "encoded exactly once. Store the key as Gooten shows it (unencoded) to silence this warning."
        )
        return unquote(key)
    return key


# How JSON serialisers may escape a base64 key's characters: PHP writes "/" as "\/", .NET's default encoder
# writes "+" as "\u002B"; any of them may write "=" as "\u003D"; hex digits in either case.
_JSON_ESCAPES: dict[str, tuple[str, ...]] = {
    "/": ("/", "\\/", "\\u002F", "\\u002f"),
    "+": ("+", "\\u002B", "\\u002b"),
    "=": ("=", "\\u003D", "\\u003d"),
}


# The bytes a non-ASCII key is percent-encoded from: the client sends UTF-8, but a gateway built on an older
# stack (ISO-8859-1 is HTTP's historical default) may echo the key it read as Latin-1 bytes, ``é`` as ``%E9``.
_PERCENT_ENCODINGS = ("utf-8", "latin-1")


def billing_key_forms(key: str) -> tuple[str, ...]:
    """Every form the key can take on the wire, in a log or echoed in a JSON body.

    Raw, URL-encoded once (from its UTF-8 bytes and, when it has them, its Latin-1 bytes) and twice, in
    either hex case, and the raw key as JSON serialisers escape it.
    """
    once = {
        encode(key, safe=safe, encoding=encoding)
        for encoding in _PERCENT_ENCODINGS
        if _encodable(key, encoding)
        for encode, safe in ((quote, ""), (quote, "/"), (quote_plus, ""))
    }
    twice = {encode(form) for form in once for encode in (quote, quote_plus)}
    encoded = once | twice
    forms = {key} | encoded | {_lower_hex(form) for form in encoded} | _json_escaped(key)
    return tuple(sorted(forms, key=len, reverse=True))


def _encodable(key: str, encoding: str) -> bool:
    try:
        key.encode(encoding)
    except UnicodeEncodeError:  # a character Latin-1 has no byte for: no such form
        return False
    return True


def _json_escaped(key: str) -> set[str]:
    """The raw key with its ``/``, ``+`` and ``=`` escaped in every way a JSON serialiser may write them."""
    present = [char for char in _JSON_ESCAPES if char in key]
    forms = set()
    for choice in itertools.product(*(_JSON_ESCAPES[char] for char in present)):
        table = dict(zip(present, choice, strict=True))
        forms.add("".join(table.get(char, char) for char in key))
    return forms


def _lower_hex(text: str) -> str:
    """``%2B`` -> ``%2b``: percent escapes are case-insensitive, so a log may show either."""
    return _PERCENT_ESCAPE.sub(lambda match: match.group(0).lower(), text)
