"""Export Gooten orders page by page into numbered JSON Lines parts and a manifest (no Airflow here).

:func:`export_orders` streams: it holds one search page (at most 100 orders) at a time, each order is
cut down to the allowlisted fields and written as one line, and every ``pages_per_part`` pages a part is
closed and marked complete (see :mod:`gooten_provider.transfers.export_folder`). A retry after a crash
finds the export under way, keeps its complete parts and asks Gooten only for the pages after them.
``manifest.json`` is written last.

Gooten pages by offset. Should an order be created inside the window while the export pages through it,
the orders after it shift by one and the order on a page boundary comes back on the next page: such a
repeat of an order on the page before (or, after a resume, on the last page of the last complete part) is
dropped and counted as ``duplicates_dropped``.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gooten_provider.batch.report import PROGRESS_FRACTION, PROGRESS_SECONDS
from gooten_provider.client import SearchPage
from gooten_provider.transfers.export_folder import ExportFolder, PartRecord
from gooten_provider.transfers.export_window import ExportWindow
from gooten_provider.transfers.order_fields import FieldTree, project

#: The manifest's format name; a reader checks it.
MANIFEST_FORMAT = "gooten-orders-export/1"

#: gzip's own default (``gzip -6``): level 9 costs three times the CPU for 5% smaller parts.
GZIP_LEVEL = 6

#: Reads the search pages from a page number on.
PageReader = Callable[[int], Iterator[SearchPage]]


@dataclass(frozen=True)
class ExportPlan:
    """What an export writes. A retry resumes an export under way only if its plan is the same."""

    window: ExportWindow
    #: Other search filters, as Gooten's query parameters (``{"email": ...}``).
    filters: dict[str, str]
    #: The allowlisted field paths, or ``None`` for the whole order JSON.
    fields: list[str] | None
    field_tree: FieldTree | None = field(compare=False)
    include_personal_data: bool
    compress: bool
    page_size: int
    pages_per_part: int

    def as_json(self) -> dict[str, Any]:
        """The plan as the pending file and the manifest record it."""
        return {
            "window": self.window.as_json(),
            "filters": dict(self.filters),
            "fields": list(self.fields) if self.fields is not None else "all",
            "include_personal_data": self.include_personal_data,
            "compression": "gzip" if self.compress else "none",
            "page_size": self.page_size,
            "pages_per_part": self.pages_per_part,
        }

    @property
    def suffix(self) -> str:
        """The part files' suffix."""
        return ".jsonl.gz" if self.compress else ".jsonl"


class ExportProgress:
    """The log of a long export, bounded whatever its size.

    A line at the first page, every tenth of the pages or every minute, and at the end.
    """

    def __init__(self, log: logging.Logger | Any, *, progress_seconds: float = PROGRESS_SECONDS) -> None:
        self._log = log
        self._progress_seconds = progress_seconds
        self._started = time.monotonic()
        self._last = self._started
        self._pages = 0
        self._next_logged_page = 1
        self.orders = 0

    def page(self, page: SearchPage, orders_written: int) -> None:
        """Count one page read (and the orders written from it); log when a line is due."""
        self._pages += 1
        self.orders += orders_written
        now = time.monotonic()
        step = max(1, int(page.total_pages * PROGRESS_FRACTION))
        if page.number >= self._next_logged_page or now - self._last >= self._progress_seconds:
            self._next_logged_page = page.number + step
            self._last = now
            self._line(f"page {page.number} of {page.total_pages}", now)

    def finished(self, pages: int) -> None:
        """Log the last line."""
        self._line(f"done: {pages} page(s)", time.monotonic())

    def _line(self, where: str, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        self._log.info(
            "Gooten orders export: %s; %d order(s) written by this try in %.1f s "
            "(%.0f orders/s, %.2f pages/s).",
            where,
            self.orders,
            elapsed,
            self.orders / elapsed,
            self._pages / elapsed,
        )


class _CountingWriter:
    """A binary file that counts the bytes written to it (the part's size, whatever the storage)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return int(self.raw.write(data) or len(data))

    def flush(self) -> None:
        self.raw.flush()


class _PartWriter:
    """One part file being written: lines in, then closed and marked complete."""

    def __init__(
        self, folder: ExportFolder, plan: ExportPlan, export_id: str, number: int, page: int
    ) -> None:
        self.folder = folder
        self.relative = folder.part_name(export_id, number, plan.suffix)
        self.first_page = page
        self.last_page = page
        self.orders = 0
        self.pages = 0
        self._raw = folder.open_part(self.relative)
        self._counter = _CountingWriter(self._raw)
        self._out: Any = (
            gzip.GzipFile(fileobj=self._counter, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
            if plan.compress
            else self._counter
        )

    def write(self, lines: list[bytes]) -> None:
        self._out.write(b"".join(lines))
        self.orders += len(lines)

    def close(self, last_page_ids: list[str]) -> PartRecord:
        if self._out is not self._counter:
            self._out.close()
        self._raw.close()
        part = PartRecord(
            path=self.relative,
            orders=self.orders,
            first_page=self.first_page,
            last_page=self.last_page,
            bytes=self._counter.written,
            last_page_ids=last_page_ids,
        )
        self.folder.mark_complete(part)
        return part


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _line(order: dict[str, Any], plan: ExportPlan) -> bytes:
    return (
        json.dumps(project(order, plan.field_tree), separators=(",", ":"), ensure_ascii=False) + "\n"
    ).encode()


def _resume_or_start(folder: ExportFolder, plan: ExportPlan, log: Any) -> tuple[str, list[PartRecord], str]:
    """The export under way with the same plan (and its complete parts), or a new one."""
    pending = folder.read_pending()
    if pending is not None and pending.get("plan") == plan.as_json():
        parts = folder.complete_parts(pending["export_id"])
        log.info(
            "Resuming the Gooten orders export %s: %d complete part(s), %d order(s), from page %d.",
            pending["export_id"],
            len(parts),
            sum(part.orders for part in parts),
            parts[-1].last_page + 1 if parts else 1,
        )
        return pending["export_id"], parts, str(pending.get("started_at") or _now())
    if pending is not None:
        log.info("An earlier export under way exported something else (another plan): starting over.")
        folder.discard(pending["export_id"])
    started_at = _now()
    return folder.start(plan.as_json(), started_at), [], started_at


def export_orders(
    read_pages: PageReader,
    folder: ExportFolder,
    plan: ExportPlan,
    *,
    provider_version: str,
    log: logging.Logger | Any,
    progress: ExportProgress | None = None,
) -> dict[str, Any]:
    """Export every order the search finds into ``folder``; publish and return the manifest.

    :param read_pages: gives the search pages from a page number on (the client's
        ``search_order_pages`` with the plan's filters).
    """
    pending = folder.read_pending()
    published = folder.read_manifest()
    if pending and published and published.get("export_id") == pending["export_id"]:
        folder.forget_pending()  # an earlier try published it and stopped before tidying up
        return published
    export_id, parts, started_at = _resume_or_start(folder, plan, log)
    progress = progress or ExportProgress(log)
    first_page = parts[-1].last_page + 1 if parts else 1
    previous_ids = set(parts[-1].last_page_ids) if parts else set()
    duplicates = 0
    last_page = first_page - 1
    writer: _PartWriter | None = None
    page_ids: list[str] = []
    for page in read_pages(first_page):
        last_page = page.number
        lines, page_ids = [], []
        for order in page.orders:
            order_id = str(order.get("Id"))
            if order_id in previous_ids:
                duplicates += 1
                continue
            page_ids.append(order_id)
            lines.append(_line(order, plan))
        if writer is None and lines:
            writer = _PartWriter(folder, plan, export_id, len(parts) + 1, page.number)
        if writer is not None:
            writer.write(lines)
            writer.last_page = page.number
            writer.pages += 1
            if writer.pages >= plan.pages_per_part:
                parts.append(writer.close(page_ids))
                writer = None
        previous_ids = set(page_ids)
        progress.page(page, len(lines))
    if writer is not None:
        parts.append(writer.close(page_ids))
    progress.finished(last_page)
    manifest = {
        "format": MANIFEST_FORMAT,
        "export_id": export_id,
        "provider_version": provider_version,
        **plan.as_json(),
        "orders": sum(part.orders for part in parts),
        "pages": max(last_page, parts[-1].last_page if parts else 0),
        "duplicates_dropped": duplicates,
        "resumed_from_page": first_page if first_page > 1 else None,
        "started_at": started_at,
        "finished_at": _now(),
        "parts": [part.manifest_entry() for part in parts],
    }
    folder.publish(manifest)
    return manifest
