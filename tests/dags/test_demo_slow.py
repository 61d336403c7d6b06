"""SLOW (about 15-30 s): runs ``demo/demo.py`` (what ``make demo`` runs) as a subprocess, as a user would.

It migrates a throwaway Airflow DB and runs ``airflow dags test`` for real, so it is the one test here that
exercises the CLI path end to end. Deselect it with ``-k "not demo"`` when iterating.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from . import REPO_ROOT

# shop order -> (rules hit, action, Gooten before -> after, outcome), as the demo's table prints them
EXPECTED_ROWS = {
    "clean": ("-", "-", "New -> New", "-"),
    "missing-postal-code": ("invalid_shipping_address", "Hold", "New -> Hold", "updated"),
    "http-image": ("bad_image_url", "Hold", "New -> Hold", "updated"),
    "total-mismatch": ("price_mismatch", "Hold", "New -> Hold", "updated"),
    "double-submission": ("duplicate_submission", "Cancel", "New -> Cancelled", "updated"),
    "fraud-bad-address": (
        "invalid_shipping_address, flagged_test_or_fraud",
        "Cancel",
        "New -> Cancelled",
        "updated",
    ),
    "fraud-in-production": ("flagged_test_or_fraud", "Cancel", "InProduction -> InProduction", "ineligible"),
    "already-held": ("invalid_shipping_address", "Hold", "Hold -> Hold", "unchanged"),
    "cancel-too-late": ("-", "-", "Shipped -> Shipped", "-"),
}


def _run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "demo" / "demo.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )


def _table(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        if re.match(r"^\d+-[0-9a-f]{8}  ", line):
            cells = re.split(r"\s{2,}", line.strip())
            rows[cells[1]] = cells[2:]
    return rows


def test_make_demo_runs_the_dq_dag_and_prints_each_order() -> None:
    result = _run_demo()

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "airflow db migrate ...." in out and "airflow dags test gooten_dq_hold_cancel ...." in out
    steps = 3 if "airflow dags reserialize ...." in out else 2  # reserialized first on Airflow 3.0 only
    assert out.count(" ok (") == steps
    rows = _table(out)
    assert len(rows) == 15
    for shop_order, expected in EXPECTED_ROWS.items():
        assert tuple(rows[shop_order]) == expected, (shop_order, rows[shop_order])
    assert "9 of 15 orders failed a rule: 4 held, 3 cancelled, " in out
    assert "1 could not be cancelled any more" in out and "1 already on hold" in out
    assert "Stopped the local Gooten API and removed" in out
    # Airflow's own output is kept out of the way when the run succeeds.
    assert "[info" not in out and "Traceback" not in out
    removed = re.search(r"removed (\S+)\.", out)
    assert removed and not os.path.exists(removed.group(1))


def test_make_demo_dry_run_changes_nothing() -> None:
    result = _run_demo("--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr
    rows = _table(result.stdout)
    assert rows["http-image"] == ["bad_image_url", "Hold", "New -> New", "dry_run"]
    assert rows["test-order"] == ["flagged_test_or_fraud", "Cancel", "New -> New", "dry_run"]
    assert "5 would be held (dry run), 4 would be cancelled (dry run)" in result.stdout


def test_make_demo_exits_non_zero_when_the_run_fails_and_shows_why() -> None:
    result = _run_demo("--stale-batch")

    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "airflow dags test gooten_dq_hold_cancel .............. FAILED (exit code 1)" in out
    assert all(cells[-1] == "-" for cells in _table(out).values())  # no order touched
    assert "no order was touched" in out
    assert "The following tests have failed:" in out and "Check: batch_is_fresh" in out
    kept = re.search(r"Kept (\S+)\.", out)
    assert kept and os.path.exists(os.path.join(kept.group(1), "airflow-output.log"))
    import shutil

    shutil.rmtree(kept.group(1))
