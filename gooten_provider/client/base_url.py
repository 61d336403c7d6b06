"""The Gooten API base URL: default, scheme, port, and the rule that keeps the key off plain HTTP."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

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
    except ValueError as exc:  # the URL cannot be split, so no part of it is shown
        raise GootenConfigurationError(
            f"Invalid Gooten API base URL ({exc}): give scheme://host[:port], e.g. {DEFAULT_BASE_URL}."
        ) from None
    shown = _shown(parts)
    try:
        url_port = parts.port
    except ValueError as exc:
        raise GootenConfigurationError(
            f"Invalid Gooten API base URL {shown}: {exc}; give scheme://host[:port], e.g. {DEFAULT_BASE_URL}."
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise GootenConfigurationError(
            f"Invalid Gooten API base URL {shown}: the scheme must be https (or http for a loopback host)."
        )
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise GootenConfigurationError(
            f"Invalid Gooten API base URL {shown}: give only scheme://host[:port], e.g. {DEFAULT_BASE_URL}; "
            "credentials belong in the connection's fields."
        )
    if scheme == "http" and not is_loopback_host(parts.hostname):
        raise GootenConfigurationError(
            f"Refusing plain http:// for {parts.hostname}: the Partner Billing Key would travel unencrypted. "
            "Use https://, or http:// only for a loopback host (127.0.0.1, ::1, localhost)."
        )
    effective_port = url_port or port
    if effective_port is not None and not 1 <= int(effective_port) <= 65535:
        raise GootenConfigurationError(
            f"Invalid Gooten API port {effective_port}: give a port between 1 and 65535."
        )
    netloc = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if effective_port:
        netloc = f"{netloc}:{int(effective_port)}"
    path = parts.path.rstrip("/")
    if path.lower() == "/api":
        path = ""
    return f"{scheme}://{netloc}{path}"


def _shown(parts: SplitResult) -> str:
    """The URL as an error may show it: scheme and host[:port] only, never user info, path or query."""
    host_and_port = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host_and_port}"
