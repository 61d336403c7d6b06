"""The orders export over loopback HTTP: what it writes, what it leaves out, and how it survives failures."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gooten_provider.client import SearchPage
from gooten_provider.exceptions import GootenApiError
from gooten_provider.operators.order_results import storage_path
from gooten_provider.transfers.export_folder import ExportFolder
from gooten_provider.transfers.export_reader import read_exported_orders, read_manifest
from gooten_provider.transfers.orders_export import export_orders
from gooten_provider.transfers.orders_to_object_storage import GootenOrdersToObjectStorageOperator

from .conftest import DAYS, FIRST_DAY, created_on, search_requests

REPO_ROOT = Path(__file__).resolve().parents[2]
WINDOW = {"created_from": "2025-03-02", "created_to": "2025-03-04"}

#: Every key of Gooten's order JSON that holds personal data, wherever it is nested: the addresses and
#: their parts, the free-form Meta objects, the artwork URLs.
PERSONAL_KEYS = frozenset(
    {
        "ShippingAddress",
        "BillingAddress",
        "FirstName",
        "LastName",
        "Line1",
        "Line2",
        "City",
        "State",
        "CountryCode",
        "PostalCode",
        "Email",
        "Phone",
        "Meta",
        "SourceUrl",
        "ThumbnailUrl",
    }
)


def export(output: Path | str, **kwargs: Any) -> dict[str, Any]:
    uri = output.as_uri() if isinstance(output, Path) else output
    context = kwargs.pop("context", {})
    operator = GootenOrdersToObjectStorageOperator(task_id="export", output_path=uri, **kwargs)
    return operator.execute(context)


def keys_in(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, nested in value.items():
            yield key
            yield from keys_in(nested)
    elif isinstance(value, list):
        for nested in value:
            yield from keys_in(nested)


def part_files(output: Path) -> list[Path]:
    return sorted(output.glob("parts-*/part-*.jsonl*"))


def test_exports_every_order_of_the_window_once_across_page_and_part_boundaries(api, tmp_path):
    ids = api.add_orders_over_days(1234, FIRST_DAY, DAYS, seed=7)
    expected = created_on(api, ids, dt.date(2025, 3, 2), dt.date(2025, 3, 4))
    assert 600 < len(expected) < 800 and len(expected) % 100  # a last page that is not full

    summary = export(tmp_path / "out", orders_per_part=250, **WINDOW)  # 3 pages per part

    exported = list(read_exported_orders((tmp_path / "out").as_uri()))
    assert [order["Id"] for order in exported] == expected
    pages = math.ceil(len(expected) / 100)
    assert [entry.page for entry in search_requests(api)] == list(range(1, pages + 1))
    manifest = read_manifest((tmp_path / "out").as_uri())
    assert manifest["orders"] == len(expected) == sum(part["orders"] for part in manifest["parts"])
    assert manifest["pages"] == pages
    assert [part["pages"] for part in manifest["parts"]] == [
        [first, min(first + 2, pages)] for first in range(1, pages + 1, 3)
    ]
    assert manifest["window"] == WINDOW and manifest["compression"] == "gzip"
    assert len(part_files(tmp_path / "out")) == len(manifest["parts"])
    # the XCom is the manifest's summary: counts and where, never the orders
    assert summary["manifest"].endswith("/out/manifest.json")
    assert (summary["orders"], summary["pages"], summary["parts"]) == (
        len(expected),
        pages,
        len(manifest["parts"]),
    )
    assert (summary["created_from"], summary["created_to"]) == ("2025-03-02", "2025-03-04")
    assert len(json.dumps(summary)) < 2000


def test_a_window_of_whole_pages_costs_one_request_per_page(api, tmp_path):
    api.add_orders_over_days(300, FIRST_DAY, 1, seed=1)

    summary = export(tmp_path / "out", created_from="2025-03-01", created_to="2025-03-01", compress=False)

    assert summary["orders"] == 300
    assert [entry.page for entry in search_requests(api)] == [1, 2, 3]
    assert all(path.suffix == ".jsonl" for path in part_files(tmp_path / "out"))


def test_an_empty_window_publishes_an_empty_export(api, tmp_path):
    api.add_orders_over_days(50, FIRST_DAY, 1, seed=1)

    summary = export(tmp_path / "out", created_from="2025-04-01", created_to="2025-04-01")

    assert (summary["orders"], summary["parts"]) == (0, 0)
    assert list(read_exported_orders((tmp_path / "out").as_uri())) == []
    assert len(search_requests(api)) == 1


def test_the_window_defaults_to_the_runs_data_interval_end_excluded(api, tmp_path):
    ids = api.add_orders_over_days(400, FIRST_DAY, DAYS, seed=3)
    context = {
        "data_interval_start": dt.datetime(2025, 3, 3, tzinfo=dt.UTC),
        "data_interval_end": dt.datetime(2025, 3, 4, tzinfo=dt.UTC),
    }

    summary = export(tmp_path / "out", context=context)

    assert (summary["created_from"], summary["created_to"]) == ("2025-03-03", "2025-03-03")
    exported = [order["Id"] for order in read_exported_orders((tmp_path / "out").as_uri())]
    assert exported == created_on(api, ids, dt.date(2025, 3, 3), dt.date(2025, 3, 3))


def test_the_default_fields_hold_no_personal_data(api, tmp_path):
    ids = api.add_orders_over_days(150, FIRST_DAY, 1, seed=5)
    orders = [api.order(i) for i in ids]
    address_keys = {key for order in orders for key in order["ShippingAddress"]} | set(
        orders[0]["BillingAddress"]
    )
    assert address_keys <= PERSONAL_KEYS, "the list of personal keys misses one of the order JSON's"

    export(tmp_path / "out", created_from="2025-03-01", created_to="2025-03-01", compress=False)

    exported = list(read_exported_orders((tmp_path / "out").as_uri()))
    assert len(exported) == 150
    assert not PERSONAL_KEYS & {key for order in exported for key in keys_in(order)}
    raw = b"".join(path.read_bytes() for path in part_files(tmp_path / "out")).decode()
    for order in orders:
        address = order["ShippingAddress"]
        for value in (
            address["Email"],
            address["Phone"],
            address["Line1"],
            order["Items"][0]["Images"][0]["SourceUrl"],
        ):
            assert value not in raw
    # what operations need is there: ids, creation time, statuses, tracking, item ids, totals
    first, original = exported[0], orders[0]
    assert {key: first[key] for key in ("Id", "NiceId", "GootenId", "SourceId", "CreatedAt", "Total")} == {
        key: original[key] for key in ("Id", "NiceId", "GootenId", "SourceId", "CreatedAt", "Total")
    }
    shipped = next(o for o in exported if o["Items"][0]["Status"] == "Shipped")
    assert shipped["Items"][0]["TrackingNumber"] and shipped["Items"][0]["Shipments"][0]["ShipCarrierName"]
    assert first["Items"][0]["Images"] == [{"OrderItemId": original["Items"][0]["Images"][0]["OrderItemId"]}]


def test_include_personal_data_exports_the_whole_order_json(api, tmp_path):
    ids = api.add_orders_over_days(120, FIRST_DAY, 1, seed=5)

    summary = export(
        tmp_path / "out", created_from="2025-03-01", created_to="2025-03-01", include_personal_data=True
    )

    assert summary["fields"] == "all" and summary["include_personal_data"] is True
    assert list(read_exported_orders((tmp_path / "out").as_uri())) == [api.order(i) for i in ids]


def test_fields_is_an_allowlist(api, tmp_path):
    ids = api.add_orders_over_days(20, FIRST_DAY, 1, seed=5)

    export(
        tmp_path / "out", created_from="2025-03-01", created_to="2025-03-01", fields=["Id", "Items.Status"]
    )

    assert list(read_exported_orders((tmp_path / "out").as_uri())) == [
        {"Id": i, "Items": [{"Status": s} for s in api.item_statuses(i)]} for i in ids
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"created_from": "2025-03-05", "created_to": "2025-03-01"},
            "created_to 2025-03-01 is before created_from",
        ),
        ({"created_from": "03/01/2025", "created_to": "2025-03-02"}, "Invalid created_from '03/01/2025'"),
        ({"created_from": "2025-02-30", "created_to": "2025-03-02"}, "give a date as yyyy-mm-dd"),
        (
            {"created_from": "2025-01-01", "created_to": "2025-12-31"},
            "365 days, more than max_window_days=92",
        ),
        (
            {"created_from": "2025-03-01", "created_to": "2025-03-03", "max_window_days": 2},
            "3 days, more than max_window_days=2",
        ),
        ({"created_from": "2025-03-01"}, "created_to is missing"),
        ({}, "this run has no data interval"),
        (
            {
                "context": {
                    "data_interval_start": dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
                    "data_interval_end": dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
                }
            },
            "data interval is empty",
        ),
        (
            {
                "context": {
                    "data_interval_start": dt.datetime(2025, 3, 1, 6, tzinfo=dt.UTC),
                    "data_interval_end": dt.datetime(2025, 3, 1, 7, tzinfo=dt.UTC),
                }
            },
            "is not at midnight UTC",
        ),
        ({**WINDOW, "fields": ["ShippingAddress.Email"]}, "Personal data in fields"),
        ({**WINDOW, "fields": ["items.status"]}, "did you mean 'Items'"),
        (
            {**WINDOW, "filters": {"start_date": "2025-03-01"}},
            "give the window as created_from and created_to",
        ),
        ({**WINDOW, "filters": {"status": "Shipped"}}, "Unknown search filter"),
    ],
)
def test_bad_input_fails_before_any_request(api, tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        export(tmp_path / "out", **arguments)
    assert api.journal == []
    assert not (tmp_path / "out").exists()


def test_an_output_path_without_a_scheme_is_refused(api, tmp_path):
    with pytest.raises(
        ValueError, match=r"Invalid output_path .*use an ObjectStoragePath or a URI with a scheme"
    ):
        export(str(tmp_path / "out"), **WINDOW)
    assert api.journal == []


def test_transient_5xx_and_throttling_mid_paging_are_survived(api, tmp_path):
    ids = api.add_orders_over_days(900, FIRST_DAY, 1, seed=9)
    api.inject_search_faults(4, "503", "500")
    api.inject_search_faults(7, "reset")
    api.set_rate_limit(5, 2)  # slower than the export reads, even on a loaded machine

    export(tmp_path / "out", created_from="2025-03-01", created_to="2025-03-01", orders_per_part=200)

    assert [order["Id"] for order in read_exported_orders((tmp_path / "out").as_uri())] == ids
    journal = search_requests(api)
    assert [entry.fault for entry in journal if entry.fault] == ["503", "500", "reset"]
    assert any(entry.throttled for entry in journal)
    assert sorted({entry.page for entry in journal if entry.outcome == "search"}) == list(range(1, 10))


def test_a_failed_rerun_leaves_the_published_export_whole_and_its_retry_resumes(api, tmp_path):
    out = tmp_path / "out"
    ids = api.add_orders_over_days(700, FIRST_DAY, 1, seed=11)
    first = export(out, created_from="2025-03-01", created_to="2025-03-01", orders_per_part=200)
    manifest_time = (out / "manifest.json").stat().st_mtime_ns
    assert all(path.stat().st_mtime_ns <= manifest_time for path in out.rglob("*") if path.is_file())
    for order_id in ids[:50]:
        api.set_item_statuses(order_id, "Delivered")
    api.clear_journal()
    api.inject_search_faults(6, *["500"] * 4)  # more than the connection's 3 retries: this rerun fails

    with pytest.raises(GootenApiError):
        export(out, created_from="2025-03-01", created_to="2025-03-01", orders_per_part=200)

    assert [entry.page for entry in search_requests(api) if entry.outcome == "search"] == [1, 2, 3, 4, 5]
    # a reader trusting the manifest still reads the first export, whole: the rerun's parts are not listed
    assert read_manifest(out.as_uri())["export_id"] == first["export_id"]
    assert [order["Id"] for order in read_exported_orders(out.as_uri())] == ids
    assert len(list(out.glob("parts-*"))) == 2
    api.clear_journal()

    retried = export(out, created_from="2025-03-01", created_to="2025-03-01", orders_per_part=200)

    # the retry keeps the two complete parts (pages 1-4) and reads from page 5 on
    assert [entry.page for entry in search_requests(api)] == [5, 6, 7]
    assert retried["resumed_from_page"] == 5 and retried["export_id"] != first["export_id"]
    exported = list(read_exported_orders(out.as_uri()))
    assert [order["Id"] for order in exported] == ids
    assert {order["Items"][0]["Status"] for order in exported[:50]} == {"Delivered"}
    # the previous export's parts stay for a reader still reading them; a third export removes them
    assert len(list(out.glob("parts-*"))) == 2
    third = export(out, created_from="2025-03-01", created_to="2025-03-01", orders_per_part=200)
    assert sorted(path.name for path in out.glob("parts-*")) == sorted(
        f"parts-{summary['export_id']}" for summary in (retried, third)
    )
    assert not (out / "_pending.json").exists()


def test_a_retry_with_other_arguments_starts_over(api, tmp_path):
    out = tmp_path / "out"
    ids = api.add_orders_over_days(500, FIRST_DAY, 1, seed=11)
    api.inject_search_faults(4, *["500"] * 4)
    with pytest.raises(GootenApiError):
        export(out, created_from="2025-03-01", created_to="2025-03-01", orders_per_part=100)
    api.clear_journal()

    export(out, created_from="2025-03-01", created_to="2025-03-01", orders_per_part=100, fields=["Id"])

    assert [entry.page for entry in search_requests(api)] == [1, 2, 3, 4, 5]
    assert list(read_exported_orders(out.as_uri())) == [{"Id": i} for i in ids]
    assert len(list(out.glob("parts-*"))) == 1


def test_an_order_repeated_across_a_page_boundary_is_exported_once(tmp_path):
    """Gooten pages by offset: an order created in the window while the export pages through it (with
    the newest first) pushes every later order one place on, and the order on a page boundary comes again."""
    ids = [f"{n}-order" for n in range(1, 8)]
    served = [ids[0:3], ids[2:5], ids[4:7]]  # each page repeats the last order of the one before
    log = logging.getLogger("test")

    def read_pages(first_page: int) -> Iterator[SearchPage]:
        for number in range(first_page, 4):
            yield SearchPage(number, [{"Id": i} for i in served[number - 1]], total_pages=3)

    plan = GootenOrdersToObjectStorageOperator(
        task_id="export", output_path=tmp_path.as_uri(), fields=["Id"], orders_per_part=200, **WINDOW
    ).plan({})
    manifest = export_orders(
        read_pages, ExportFolder(storage_path(tmp_path.as_uri())), plan, provider_version="t", log=log
    )

    assert [order["Id"] for order in read_exported_orders(tmp_path.as_uri())] == ids
    assert (manifest["orders"], manifest["duplicates_dropped"]) == (7, 2)


def settle_journal(api: Any, quiet: float = 0.3) -> None:
    """Wait until the server has journaled nothing new for ``quiet`` seconds."""
    seen, since = len(api.journal), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.05)
        if len(api.journal) != seen:
            seen, since = len(api.journal), time.monotonic()


def test_sigkill_mid_export_then_a_retry_completes_with_every_order_once(api, tmp_path):
    ids = api.add_orders_over_days(3000, FIRST_DAY, 1, seed=13)
    api.latency = 0.02
    out = tmp_path / "out"
    arguments = {"output_path": out.as_uri(), "created_from": "2025-03-01", "created_to": "2025-03-01"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.transfers.export_child",
            json.dumps({**arguments, "orders_per_part": 300}),
        ],
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(search_requests(api)) < 14:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "the export did not get going"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL
    settle_journal(api)  # the killed try's last requests are answered and journaled before it is cleared
    assert not (out / "manifest.json").exists()
    markers = sorted(out.glob("parts-*/part-*.done.json"))
    assert 3 <= len(markers) < 10  # parts of 3 pages: some complete, the export not
    api.latency = 0.0
    api.clear_journal()

    summary = export(out, orders_per_part=300, **{k: v for k, v in arguments.items() if k != "output_path"})

    resumed_from = len(markers) * 3 + 1
    assert summary["resumed_from_page"] == resumed_from
    assert [entry.page for entry in search_requests(api)] == list(range(resumed_from, 31))
    exported = [order["Id"] for order in read_exported_orders(out.as_uri())]
    assert exported == ids
    with gzip.open(part_files(out)[0]) as first_part:
        assert sum(1 for _ in first_part) == 300


class RecordingLog:
    """The one method of a logger the export uses: ``info``."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)


@pytest.mark.parametrize("orders", [1000, 3000])
def test_the_progress_log_is_bounded_whatever_the_number_of_pages(api, tmp_path, orders):
    from gooten_provider.hooks.gooten import GootenHook

    api.add_orders_over_days(orders, FIRST_DAY, 1, seed=3)
    plan = GootenOrdersToObjectStorageOperator(
        task_id="export",
        output_path=tmp_path.as_uri(),
        page_size=10,
        created_from="2025-03-01",
        created_to="2025-03-01",
    ).plan({})
    client = GootenHook().get_conn()
    log = RecordingLog()

    def read_pages(first_page: int) -> Iterator[SearchPage]:
        return client.search_order_pages(page_size=10, first_page=first_page, start_date="2025-03-01")

    manifest = export_orders(
        read_pages, ExportFolder(storage_path(tmp_path.as_uri())), plan, provider_version="t", log=log
    )

    assert manifest["orders"] == orders and manifest["pages"] == orders // 10
    progress = [line for line in log.lines if line.startswith("Gooten orders export: page")]
    assert 10 <= len(progress) <= 11  # the first page, then one line per tenth of the pages
    assert progress[0].startswith("Gooten orders export: page 1 of")
    assert f"{orders} order(s) written" in log.lines[-1] and "orders/s" in log.lines[-1]


def test_a_retry_after_a_crash_right_after_publishing_returns_the_published_export(api, tmp_path):
    out = tmp_path / "out"
    api.add_orders_over_days(150, FIRST_DAY, 1, seed=1)
    first = export(out, created_from="2025-03-01", created_to="2025-03-01")
    # the try was killed between replacing manifest.json and removing _pending.json
    (out / "_pending.json").write_text(json.dumps({"export_id": first["export_id"], "plan": {}}))
    api.clear_journal()

    again = export(out, created_from="2025-03-01", created_to="2025-03-01")

    assert again["export_id"] == first["export_id"] and again["orders"] == 150
    assert api.journal == []
    assert not (out / "_pending.json").exists()
