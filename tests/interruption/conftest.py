"""What the interruption tests share: a slow local Gooten API, and task tries in processes of their own.

The local Gooten API runs in the test's process, so its journal outlives a child process the test kills.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gooten_provider.testing import GootenApiServer
from tests.operators.conftest import point_connection_at

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def slow_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[GootenApiServer]:
    """A local Gooten API answering every request after 20 ms, so that a batch is still running when hit."""
    with GootenApiServer(retry_after=0.05, latency=0.02) as server:
        point_connection_at(server, monkeypatch)
        yield server


def child(module: str, args: dict[str, Any]) -> subprocess.Popen[str]:
    """Start ``python -m tests.interruption.<module> '<args as JSON>'``, its output piped as text."""
    return subprocess.Popen(
        [sys.executable, "-m", f"tests.interruption.{module}", json.dumps(args)],
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_batch_child(
    order_ids: list[str], status: str, results_path: str, *, max_workers: int, try_number: int = 1
) -> subprocess.Popen[str]:
    """Start a task try of a batch in a process of its own (``batch_child``): ``status`` is an order status
    to set, or ``"cancel_items"`` to cancel every item of each order.
    """
    return child(
        "batch_child",
        {
            "order_ids": order_ids,
            "status": status,
            "results_path": results_path,
            "try_number": try_number,
            "max_workers": max_workers,
        },
    )


def one_record_per_order(
    records: Iterable[Mapping[str, Any]], order_ids: Iterable[str]
) -> dict[str, Mapping[str, Any]]:
    """The records by order ID, checking that every order has exactly one."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for record in records:
        assert record["order_id"] not in by_id, f"two records of {record['order_id']}"
        by_id[record["order_id"]] = record
    assert set(by_id) == set(order_ids)
    return by_id
