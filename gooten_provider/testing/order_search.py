"""``GET /api/ordersearch`` of the local Gooten API: its parameters, its pages, and a cache for big stores.

As documented [C] and inferred [I] (see docs/testing.md):

* ``page`` numbers start at 1 [I, a third party's word]; ``pageSize`` is 1 to 100, default 25 [I]; a larger
  ``pageSize`` is served as 100. A page past the last is empty.
* ``startDate`` and ``endDate`` (``yyyy-mm-dd``) filter on the order's creation date, both included [C for
  the names and the form, I for the inclusive ends]; ``email``, ``lastName`` and ``postalCode`` match the
  shipping or billing address, ignoring case and spaces [I].
* The answer is ``{"Orders": [...], "TotalPages": n, "Page": p, "HadError": false}`` [C]; ``TotalPages`` is
  at least 1. Orders come in creation order, oldest first [I: Gooten documents no sort order], each in the
  GET-order shape, ``GootenId`` included [I: the 2016 swagger model of a search result has none, Gooten's
  newer GET-order page has it].

The matching orders of a filter are kept between requests while the store does not grow, so paging through
100,000 orders costs one scan, not one per page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from gooten_provider.testing.orders import OrderStore, SearchFilter

#: Default and largest ``pageSize`` of ``GET /api/ordersearch``.
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100

#: One error of Gooten's envelope: ``(PropertyName, ErrorMessage, AttemptedValue)``.
SearchError = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search request's filter and page."""

    search_filter: SearchFilter
    page: int
    page_size: int


def parse_search(params: Mapping[str, str]) -> SearchQuery | list[SearchError]:
    """The search a request asks for (parameter names case-folded), or the errors Gooten would answer."""
    errors: list[SearchError] = []
    numbers: dict[str, int] = {}
    for name, key, default in (("page", "page", 1), ("pageSize", "pagesize", DEFAULT_PAGE_SIZE)):
        raw = params.get(key, "").strip()
        try:
            value = int(raw) if raw else default
        except ValueError:
            value = 0
        if value < 1:
            errors.append((name, f"'{name}' must be a whole number of 1 or more.", raw))
        numbers[name] = value
    dates: dict[str, date | None] = {}
    for name in ("startDate", "endDate"):
        raw = params.get(name.casefold(), "").strip()
        try:
            dates[name] = date.fromisoformat(raw) if raw else None
        except ValueError:
            dates[name] = None
            errors.append((name, f"'{name}' must be a date in yyyy-mm-dd form.", raw))
    if errors:
        return errors
    search_filter = SearchFilter(
        email=params.get("email") or None,
        last_name=params.get("lastname") or None,
        postal_code=params.get("postalcode") or None,
        start_date=dates["startDate"],
        end_date=dates["endDate"],
    )
    return SearchQuery(search_filter, numbers["page"], min(numbers["pageSize"], MAX_PAGE_SIZE))


class SearchCache:
    """The orders matching the last filters searched, valid while the store keeps its size.

    Orders are never removed and the fields searched on (addresses, creation date) never change, so a store
    of the same size gives the same matches. The caller holds the store's lock.
    """

    def __init__(self, keep: int = 8) -> None:
        self._keep = keep
        self._found: dict[SearchFilter, tuple[int, list[dict[str, Any]]]] = {}

    def matching(self, store: OrderStore, search_filter: SearchFilter) -> list[dict[str, Any]]:
        """The stored orders (not copies) matching the filter, in creation order."""
        cached = self._found.get(search_filter)
        if cached is not None and cached[0] == len(store):
            return cached[1]
        found = store.search(search_filter)
        if len(self._found) >= self._keep:
            self._found.pop(next(iter(self._found)))
        self._found[search_filter] = (len(store), found)
        return found


def search_page_number(params: Mapping[str, str]) -> int | None:
    """The ``page`` a search asks for (1 when not given), or ``None`` when it is not a number."""
    raw = params.get("page", "").strip()
    try:
        return int(raw) if raw else 1
    except ValueError:
        return None


def search_fault_key(page: int) -> str:
    """The key faults for one search page are queued under (no order id looks like it)."""
    return f"ordersearch page {page}"


def search_page(found: list[dict[str, Any]], query: SearchQuery) -> dict[str, Any]:
    """The answer's body for one page of the matching orders."""
    start = (query.page - 1) * query.page_size
    return {
        "Orders": found[start : start + query.page_size],
        "TotalPages": max(1, math.ceil(len(found) / query.page_size)),
        "Page": query.page,
        "HadError": False,
    }
