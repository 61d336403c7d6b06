"""The wire format of the per-order records: the XCom, ``records.jsonl`` and ``summary.json``.

Downstream tasks, ``read_order_results`` and earlier tries' folders read these, so their keys, key order and
values must not change when the engine's code does. The expected JSON in ``tests/operators/wire/`` was written
by the engine before its records were typed (``GOOTEN_WRITE_WIRE_FIXTURES=1`` writes it again: only for a
deliberate change of the format, with a CHANGELOG entry).
"""

import json
import os
import re
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from gooten_provider.operators.gooten import GootenOrderStatusOperator

WIRE = Path(__file__).parent / "wire"
MISSING = "990-00000000-0000-0000-0000-000000000000"


def _orders(api):
    """One order per way a write to Hold can end, named so that the JSON does not depend on the ids."""
    names = {
        "updated": api.add_order(statuses=["New", "Pending"])["Id"],
        "unchanged": api.add_order(statuses="Hold")["Id"],
        "ineligible": api.add_order(statuses=["New", "Shipped"])["Id"],
        "failed_read": MISSING,
        "failed_refused": api.add_order(statuses="New")["Id"],
        "unknown": api.add_order(statuses="New")["Id"],
        "updated_after_lost_answer": api.add_order(statuses="New")["Id"],
    }
    api.inject_faults(names["failed_refused"], "refused", method="POST")
    api.inject_faults(names["unknown"], "reset", "reset", "reset", method="POST")
    api.inject_faults(names["updated_after_lost_answer"], "lost_response", method="POST")
    return names


def _named(text: str, names: dict[str, str]) -> str:
    """``text`` with what differs from run to run named: the order ids, Gooten's error reference codes."""
    for name, order_id in names.items():
        text = text.replace(order_id, f"<{name}>")
    return re.sub(r"ErrorReferenceCode [0-9a-f-]{36}", "ErrorReferenceCode <reference>", text)


def _check(name: str, text: str) -> None:
    path = WIRE / name
    if os.environ.get("GOOTEN_WRITE_WIRE_FIXTURES"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def _run(ti, **kwargs):
    operator = GootenOrderStatusOperator(task_id="wire", status="Hold", reason="wire format", **kwargs)
    try:
        return operator.execute({"ti": ti})
    except AirflowException:
        return ti.xcoms["return_value"]


def test_the_records_xcom_keeps_its_format(api, ti):
    names = _orders(api)
    records = _run(ti, order_ids=list(names.values()))
    _check("xcom_records.json", _named(json.dumps(records, indent=1), names))


def test_a_dry_runs_records_xcom_keeps_its_format(api, ti):
    names = _orders(api)
    records = _run(ti, order_ids=list(names.values()), dry_run=True)
    _check("xcom_dry_run_records.json", _named(json.dumps(records, indent=1), names))


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry_run"])
def test_the_results_files_and_summary_xcom_keep_their_format(api, ti, tmp_path, dry_run):
    names = _orders(api)
    results_path = tmp_path / "results"
    summary = _run(ti, order_ids=list(names.values()), dry_run=dry_run, results_path=results_path.as_uri())
    (folder,) = results_path.iterdir()
    prefix = "dry_run_" if dry_run else ""
    named = {**names, "results_path": results_path.as_uri(), "attempt": folder.name}
    # the failing records come in the order the threads finished them: held sorted by the name of each order
    summary["failed"].sort(key=lambda record: _named(record["order_id"], named))
    _check(f"{prefix}xcom_summary.json", _named(json.dumps(summary, indent=1), named))
    written = (folder / "summary.json").read_text()
    in_order = json.loads(written)
    in_order["failed"].sort(key=lambda record: _named(record["order_id"], named))
    assert json.dumps(json.loads(written), indent=1) == written  # written as json.dumps(indent=1) does
    _check(f"{prefix}summary.json", _named(json.dumps(in_order, indent=1), named))
    # completion order varies with the threads: the lines are held sorted, each one byte for byte
    lines = sorted(_named((folder / "records.jsonl").read_text(), named).splitlines(keepends=True))
    _check(f"{prefix}records.jsonl", "".join(lines))
