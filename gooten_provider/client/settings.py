"""Every setting of a Gooten client in one place: its name, default and check (:class:`ClientSettings`).

The hook only merges where a value comes from (the hook's argument, else the connection's extra, else the
default here); the clients take a :class:`ClientSettings`; the operator and the connection form check
nothing of their own (the form's field schema is compared with :data:`SETTINGS` by a test). Importing this
module loads no HTTP library, so the hook can use it at DAG parse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from gooten_provider.client.base_url import DEFAULT_BASE_URL, normalize_base_url
from gooten_provider.client.billing_key import prepare_billing_key
from gooten_provider.exceptions import GootenConfigurationError

#: Words read as a boolean, for a connection extra and for an operator's templated argument alike. No
#: empty text and no "none": a missing conf key or param renders to those, and a dry run must never turn
#: into a real run because a value went missing.
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})


def bool_from_word(text: str) -> bool | None:
    """``True`` or ``False`` for a word of :data:`TRUE_WORDS` or :data:`FALSE_WORDS`, else ``None``.

    Any case; blanks around the word are ignored.
    """
    word = text.strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


@dataclass(frozen=True)
class Setting:
    """One tunable setting: its kind, bounds and default, and where it may be given.

    :param kind: ``"number"`` (seconds or a rate), ``"whole"`` (a whole number) or ``"bool"``.
    :param minimum: the smallest value allowed (numbers only).
    :param maximum: the largest value allowed (numbers only).
    :param above_minimum: the value must be strictly above ``minimum`` (a rate, a timeout).
    :param optional: ``None`` is a value (no cap, for ``requests_per_second``).
    :param extra: the setting may be given as a Gooten connection extra.
    """

    name: str
    kind: str
    default: Any
    minimum: float = 0.0
    maximum: float = math.inf
    above_minimum: bool = False
    optional: bool = False
    extra: bool = True

    def allowed(self) -> str:
        """What is allowed, in words, for error messages."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "whole":
            top = f" to {self.maximum:g}" if math.isfinite(self.maximum) else " or more"
            return f"a whole number from {self.minimum:g}{top}"
        if self.above_minimum:
            return f"a number above {self.minimum:g}{' (or None for no cap)' if self.optional else ''}"
        return f"a number of at least {self.minimum:g}"

    def check(self, value: Any) -> Any:
        """Return the value in its kind (``int``, ``float`` or ``bool``), or raise saying what is allowed.

        :raises GootenConfigurationError: the value is of the wrong type or out of bounds.
        """
        if value is None and self.optional:
            return None
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise self._error(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._error(value)
        if self.kind == "whole" and not float(value).is_integer():
            raise self._error(value)
        low_ok = value > self.minimum if self.above_minimum else value >= self.minimum
        if not (low_ok and value <= self.maximum and math.isfinite(value)):  # NaN fails too
            raise self._error(value)
        return int(value) if self.kind == "whole" else float(value)

    def parse(self, text: Any) -> Any:
        """Read a value as a connection extra holds it (the UI and URIs store text); then :meth:`check`.

        ``None`` and ``""`` mean unset and give ``None``.
        """
        if text is None or text == "":
            return None
        value = text
        if isinstance(text, str) and self.kind == "bool":
            read = bool_from_word(text)
            value = text if read is None else read
        elif isinstance(text, str):
            try:
                value = float(text.strip().lower())
            except ValueError:
                pass
        try:
            return self.check(value)
        except GootenConfigurationError:
            raise self._error(text) from None  # the value as it was written, not as it was read

    def _error(self, value: Any) -> GootenConfigurationError:
        return GootenConfigurationError(f"{self.name} must be {self.allowed()}, got {value!r}.")


#: Every tunable client setting, by name, in the order the connection form shows the extras.
SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        #: Seconds to wait for a connection and for each response (Gooten's own clients wait 60).
        Setting("timeout", "number", 30.0, minimum=0.001),
        #: Tries of a read after the first (a write only when it provably never reached Gooten).
        Setting("max_retries", "whole", 3, maximum=10),
        #: Retry delays grow as ``backoff_factor * 2**n`` seconds, plus jitter.
        Setting("backoff_factor", "number", 0.5),
        #: Pace requests at a rate learnt from Gooten's 429s (see :mod:`gooten_provider.client.pacer`).
        Setting("adaptive_rate", "bool", True),
        #: Seconds a request keeps being retried while Gooten answers 429, before it fails.
        Setting("throttle_timeout", "number", 300.0),
        #: Connections kept open: at least the number of threads (or readers) sharing the client.
        Setting("pool_maxsize", "whole", 32, minimum=1, extra=False),
        #: An optional ceiling on the request rate of one client (requests per second).
        Setting("requests_per_second", "number", None, above_minimum=True, optional=True, extra=False),
    )
}

#: The settings a Gooten connection may hold as extras (besides ``admin_order_url``, which is the hook's).
CONNECTION_EXTRAS: tuple[str, ...] = tuple(name for name, setting in SETTINGS.items() if setting.extra)


@dataclass(frozen=True)
class ClientSettings:
    """The checked settings of one Gooten client, built once and shared by its transport, policy and pacer.

    :param recipe_id: the account's Recipe ID (public; sent on every call).
    :param billing_key: the Partner Billing Key (private). Give it as Gooten shows it; a key stored
        URL-encoded is detected and decoded once, with a warning.
    :param base_url: the API base URL, default ``https://api.print.io``; see
        :func:`~gooten_provider.client.base_url.normalize_base_url`.
    :param port: a port to use when ``base_url`` names none.
    :param timeout: seconds to wait for a connection and for each response.
    :param max_retries: retries of a failed read (0 to 10); a write is re-sent only when it never left.
    :param backoff_factor: retry delays grow as ``backoff_factor * 2**n`` seconds, plus jitter.
    :param adaptive_rate: pace every request at a rate learnt from Gooten's 429s; off, a 429 is retried like
        a 5xx, up to ``max_retries``.
    :param throttle_timeout: seconds a request keeps being retried while Gooten answers 429, before it fails
        with :class:`~gooten_provider.exceptions.GootenRateLimitError` (nothing was applied).
    :param pool_maxsize: connections kept open; at least the number of threads (or readers) sharing it.
    :param requests_per_second: an optional ceiling on this client's request rate.
    :raises GootenConfigurationError: any setting is missing or out of bounds; the message says what is
        allowed.
    """

    recipe_id: str
    billing_key: str = field(repr=False)
    base_url: str | None = DEFAULT_BASE_URL
    port: int | None = None
    timeout: float = SETTINGS["timeout"].default
    max_retries: int = SETTINGS["max_retries"].default
    backoff_factor: float = SETTINGS["backoff_factor"].default
    adaptive_rate: bool = SETTINGS["adaptive_rate"].default
    throttle_timeout: float = SETTINGS["throttle_timeout"].default
    pool_maxsize: int = SETTINGS["pool_maxsize"].default
    requests_per_second: float | None = SETTINGS["requests_per_second"].default
    #: A host given without a scheme is taken as https; a TLS failure then likely means plain HTTP.
    scheme_assumed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if not isinstance(self.recipe_id, str) or not self.recipe_id.strip():
            raise GootenConfigurationError("A Gooten Recipe ID is required (the connection's login field).")
        if not isinstance(self.billing_key, str) or not self.billing_key.strip():
            raise GootenConfigurationError(
                "A Gooten Partner Billing Key is required (the connection's password field)."
            )
        normal = {name: setting.check(getattr(self, name)) for name, setting in SETTINGS.items()}
        normal |= {
            "recipe_id": self.recipe_id.strip(),
            "billing_key": prepare_billing_key(self.billing_key),
            "base_url": normalize_base_url(self.base_url, self.port),
            "scheme_assumed": "://" not in (self.base_url or DEFAULT_BASE_URL),
        }
        for name, value in normal.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    def __repr__(self) -> str:  # the key stays out (field(repr=False)), and so does the port, folded in
        return f"ClientSettings(base_url={self.base_url!r}, recipe_id={self.recipe_id!r})"

    @classmethod
    def merged(
        cls,
        *,
        recipe_id: str,
        billing_key: str,
        base_url: str | None,
        port: int | None,
        arguments: Mapping[str, Any],
        extras: Mapping[str, Any],
        extras_from: str = "connection",
    ) -> ClientSettings:
        """Each setting from ``arguments`` (not ``None``), else ``extras`` (as text or values), else default.

        :param extras_from: where the extras come from, for messages (``"Gooten connection 'x'"``).
        :raises GootenConfigurationError: a value is out of bounds; the message names the extra it came from.
        """
        values: dict[str, Any] = {}
        for name, setting in SETTINGS.items():
            value = arguments.get(name)
            if value is None and setting.extra:
                try:
                    value = setting.parse(extras.get(name))
                except GootenConfigurationError:
                    raise GootenConfigurationError(
                        f"{extras_from}: extra {name!r} must be {setting.allowed()}, got {extras[name]!r}."
                    ) from None
            if value is not None:
                values[name] = value
        return cls(recipe_id=recipe_id, billing_key=billing_key, base_url=base_url, port=port, **values)

    @classmethod
    def check_arguments(cls, **arguments: Any) -> None:
        """Check settings given as arguments (``None`` = unset), e.g. an operator's, before any connection.

        :raises GootenConfigurationError: a value is out of bounds, or no such setting exists.
        """
        for name, value in arguments.items():
            if name not in SETTINGS:
                raise GootenConfigurationError(f"No client setting {name!r}; known: {', '.join(SETTINGS)}.")
            if value is not None:
                SETTINGS[name].check(value)


#: The constructor's keyword names, for the clients' signatures.
SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(ClientSettings) if f.init)
