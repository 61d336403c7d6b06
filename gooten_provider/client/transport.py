"""What both transports share: the User-Agent they send and how they name a wire failure's cause."""

from __future__ import annotations

from gooten_provider import __version__

USER_AGENT = f"airflow-provider-gooten/{__version__}"


def innermost(exc: BaseException) -> BaseException:
    """The innermost exception behind a library's error: enough to name a failure without its text.

    Follows what each library wraps: an exception given as an argument (``requests`` wraps urllib3's), a
    ``reason`` (urllib3's ``MaxRetryError``), then ``__cause__`` and ``__context__`` (``httpx``, ``h11``).
    The text of these exceptions may hold the request URL, billing key included: only the class is used.
    """
    inner, seen = exc, set()
    while id(inner) not in seen:
        seen.add(id(inner))
        wrapped = [arg for arg in inner.args if isinstance(arg, BaseException)]
        reason = getattr(inner, "reason", None)
        if isinstance(reason, BaseException):
            wrapped.insert(0, reason)
        nxt = wrapped[0] if wrapped else inner.__cause__ or inner.__context__
        if nxt is None:
            break
        inner = nxt
    return inner
