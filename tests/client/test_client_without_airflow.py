"""The client layer needs no Airflow: both clients read, write and fail the same way in a process where
every ``airflow`` import is refused (the local API runs in this process, with Airflow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gooten_provider.testing import GootenApiServer

REPO_ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import asyncio, json, sys

class RefuseAirflow:
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ImportError(f"no Airflow here ({name})")

sys.meta_path.insert(0, RefuseAirflow())
from gooten_provider.async_client import AsyncGootenClient
from gooten_provider.client import GootenClient
from gooten_provider.exceptions import GootenApiError

base_url, recipe_id, key, order_id = sys.argv[1:]
out = {}
with GootenClient(recipe_id, key, base_url=base_url, backoff_factor=0.01) as client:
    out["write"] = client.update_order_status(order_id, "Hold")
    out["sync_read"] = client.get_order_status(order_id)
    try:
        client.get_order("1-missing")
    except GootenApiError as exc:
        out["error"] = [[c.__name__ for c in type(exc).__mro__], str(exc)]

async def read():
    async with AsyncGootenClient(recipe_id, key, base_url=base_url) as client:
        return await client.get_order_status(order_id)

out["async_read"] = asyncio.run(read())
out["airflow_loaded"] = any(m == "airflow" or m.startswith("airflow.") for m in sys.modules)
print(json.dumps(out))
"""


def test_both_clients_work_where_airflow_cannot_be_imported():
    with GootenApiServer() as api:
        order_id = api.add_order(statuses="New")["Id"]
        child = subprocess.run(
            [sys.executable, "-c", CHILD, api.base_url, api.recipe_id, api.billing_key, order_id],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert child.returncode == 0, child.stderr[-3000:]
        out = json.loads(child.stdout.strip().splitlines()[-1])
        assert out["write"] == {"HadError": False}
        assert out["sync_read"] == out["async_read"] == ["Hold"]
        assert api.item_statuses(order_id) == ["Hold"]
        # without Airflow the errors are plain exceptions, with the same message
        assert "GootenApiError" in out["error"][0] and "AirflowException" not in out["error"][0]
        assert "1-missing" in out["error"][1]
        assert out["airflow_loaded"] is False
