"""The manual DAG's trigger form and the "Gooten order" extra link, in the Airflow UI.

The ``held_order_run`` fixture (``conftest.py``) fills in the form of ``gooten_manual_order_status`` in the
browser: the demo order ``clean``, target Hold, dry run off. Run with ``GOOTEN_UI_TESTS=1``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from playwright.sync_api import expect

from gooten_provider.links import order_url

if TYPE_CHECKING:
    from .conftest import AirflowStack, ManualRun, PageFactory

DAG_ID = "gooten_manual_order_status"


def run_path(run_id: str) -> str:
    """The UI path of a run of the manual DAG."""
    return f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"


def test_trigger_form_holds_the_order(
    held_order_run: ManualRun, airflow_stack: AirflowStack, open_page: PageFactory
) -> None:
    run = held_order_run
    assert run.trigger_form_screenshot.is_file()
    assert run.statuses_before == ["New"]
    assert run.state == "success"
    assert airflow_stack.gooten_client().get_order_status(run.order_id) == ["Hold"]

    xcom = airflow_stack.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run.run_id, safe='')}"
        "/taskInstances/change_status/xcomEntries/return_value",
        params={"deserialize": "true"},
    )
    assert xcom.status_code == 200, xcom.text
    [result] = xcom.json()["value"]
    assert result == {
        "order_id": run.order_id,
        "outcome": "updated",
        "previous_statuses": ["New"],
        "status": "Hold",
        "error": None,
        "reason": "UI test: hold before production",
    }

    # The UI shows the run and each task as successful.
    page = open_page()
    page.goto(f"{airflow_stack.airflow_url}{run_path(run.run_id)}")
    expect(page.get_by_role("heading", name=run.run_id)).to_be_visible()
    for task_id in ("check_request", "change_status", "show_outcomes"):
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=task_id, exact=True))
        expect(row).to_contain_text("Success")


def test_gooten_order_extra_link_opens_the_order(
    held_order_run: ManualRun, airflow_stack: AirflowStack, open_page: PageFactory, ui_artifacts: Path
) -> None:
    run = held_order_run
    expected = order_url(airflow_stack.admin_order_url, run.order_id)
    assert expected is not None and run.order_id in expected

    page = open_page()
    page.goto(f"{airflow_stack.airflow_url}{run_path(run.run_id)}/tasks/change_status")
    expect(page.get_by_role("heading", name="change_status")).to_be_visible()
    page.get_by_role("link", name="Details", exact=True).click()
    expect(page.get_by_text("Extra Links", exact=True)).to_be_visible()
    link = page.get_by_role("link", name="Gooten order", exact=True)
    expect(link).to_have_attribute("href", expected)
    page.screenshot(path=str(ui_artifacts / "task-extra-link.png"), animations="disabled")

    # The REST API agrees, and the link opens the order's page of the local Gooten API, now on Hold.
    links = airflow_stack.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run.run_id, safe='')}/taskInstances/change_status/links",
    )
    assert links.json()["extra_links"] == {"Gooten order": expected}
    with page.context.expect_page() as opened:
        link.click()
    order_page = opened.value
    order_page.wait_for_load_state()
    expect(order_page).to_have_url(expected)
    expect(order_page.locator("#order-id")).to_have_text(run.order_id)
    expect(order_page.locator("#order-status")).to_have_text("Hold")
    expect(order_page).to_have_title(re.compile(r"^Order .+ - local Gooten Admin$"))


def test_task_log_files_never_show_the_key(held_order_run: ManualRun, airflow_stack: AirflowStack) -> None:
    """The deployed stack writes task logs to files: none of them, nor any component log, holds the key."""
    from gooten_provider.client.billing_key import billing_key_forms
    from gooten_provider.testing import DEFAULT_BILLING_KEY

    task_logs = sorted(airflow_stack.logs.glob("dag_id=*/**/*.log"))
    assert any("task_id=change_status" in str(log) for log in task_logs), "the run wrote no task log file"
    files = [path for path in airflow_stack.home.rglob("*") if path.is_file() and path.suffix != ".db"]
    leaked = [
        str(path.relative_to(airflow_stack.home))
        for path in files
        if any(form in path.read_text(errors="replace") for form in billing_key_forms(DEFAULT_BILLING_KEY))
    ]
    assert leaked == []
