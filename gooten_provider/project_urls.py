"""Where the provider's documentation lives, for messages that point at a page of it.

The wheel holds the package, not the ``docs/`` folder, so a message names a page by its URL. The URLs are
written once, in ``pyproject.toml``'s ``[project.urls]``, and read here from the installed distribution's
metadata (a wheel install or an editable one).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, metadata

DISTRIBUTION = "airflow-provider-gooten"


@cache
def project_urls() -> dict[str, str]:
    """The distribution's Project-URLs by label (``Documentation``, ``Repository``, ...); empty if absent."""
    try:
        entries = metadata(DISTRIBUTION).get_all("Project-URL") or []
    except PackageNotFoundError:  # run from a source tree that was never installed
        return {}
    pairs = (entry.split(",", 1) for entry in entries if "," in entry)
    return {label.strip(): url.strip() for label, url in pairs}


def doc_url(page: str) -> str:
    """The URL of a documentation page, e.g. ``doc_url("webhooks.md")``; ``docs/<page>`` without metadata."""
    base = project_urls().get("Documentation")
    return f"{base.rstrip('/')}/{page}" if base else f"docs/{page}"
