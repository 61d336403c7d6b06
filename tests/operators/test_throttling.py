"""The operator against a local API that throttles the account like a gateway (loopback HTTP)."""

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from gooten_provider.testing import GootenApiServer
from tests.operators.conftest import point_connection_at
from tests.operators.test_gooten_operator import run


def test_throttling_shorter_than_throttle_timeout_fails_no_order(ti, monkeypatch):
    with GootenApiServer(rate_limit=40, rate_burst=2, latency=0.005) as api:
        point_connection_at(api, monkeypatch)
        ids = api.add_orders(12)
        results = run(ti, order_ids=ids, status="Hold", max_workers=8)
        assert {r["outcome"] for r in results} == {"updated"}
        assert any(e.throttled for e in api.journal)  # it was throttled, and no order paid for it
        assert len(api.applied_writes()) == 12


def test_throttling_past_throttle_timeout_fails_the_orders_with_an_error_naming_it(ti, monkeypatch):
    # two tokens (the credentials check, the read), then one every 5 s: the write waits past throttle_timeout
    with GootenApiServer(rate_limit=0.2, rate_burst=2) as api:
        point_connection_at(api, monkeypatch)
        ids = api.add_orders(1)
        with pytest.raises(AirflowException, match="1 of 1 Gooten order"):
            run(ti, order_ids=ids, status="Hold", max_workers=1, throttle_timeout=1)
        records = ti.xcoms["return_value"]
        assert [r["outcome"] for r in records] == ["failed"]
        for record in records:
            assert "429 Too Many Requests" in record["error"]
            assert "past throttle_timeout (1 s)" in record["error"]
        assert api.applied_writes() == []
