"""The Gooten API base URL: default, scheme, port, and the rule that keeps the key off plain HTTP."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from gooten_provider.exceptions import GootenConfigurationError

DEFAULT_BASE_URL = "https://api.print.io"


def is_loopback_host(hostname: str) -> bool:
    """Tell whether a host name is this machine (127.0.0.0/8, ::1 or localhost)."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def normalize_base_url(host: str | None = None, port: int | None = None) -> str:
    """Return ``scheme://host[:port]`` for the Gooten API, checked before any request is made.

    A host without a scheme means https. A port in ``host`` wins over ``port`` (the connection's port field).
    A trailing ``/api`` is dropped, since the client adds it. Plain ``http://`` is allowed only for loopback.

    :raises GootenConfigurationError: the URL is malformed, has an unsupported scheme, carries credentials
        or a query, or is plain http to a host that is not loopback.
    """
    raw = (host or "").strip() or DEFAULT_BASE_URL
    if "://" not in raw:
        raw = f"https://{raw}"
    try:
        parts = urlsplit(raw)
        url_port = parts.port
    except ValueError as exc:
        raise GootenConfigurationError(f"Invalid Gooten API base URL {raw!r}: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise GootenConfigurationError(
            f"Invalid Gooten API base URL {raw!r}: the scheme must be https (or http for a loopback host)."
        )
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise GootenConfigurationError(
            f"Invalid Gooten API base URL {parts.scheme}://{parts.hostname or ''}: give only "
            "scheme://host[:port], e.g. https://api.print.io; credentials belong in the connection's fields."
        )
    if scheme == "http" and not is_loopback_host(parts.hostname):
        raise GootenConfigurationError(
            f"Refusing plain http:// for {parts.hostname}: the Partner Billing Key would travel unencrypted. "
            "Use https://, or http:// only for a loopback host (127.0.0.1, ::1, localhost)."
        )
    netloc = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    effective_port = url_port or port
    if effective_port:
        netloc = f"{netloc}:{int(effective_port)}"
    path = parts.path.rstrip("/")
    if path.lower() == "/api":
        path = ""
    return f"{scheme}://{netloc}{path}"
