"""The sensor's trigger killed for real (SIGKILL, as an evicted triggerer pod), then run again from the same
serialized kwargs, as a restarted triggerer does. The local Gooten API runs in this process, so its journal
outlives the killed triggerer.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from gooten_provider.client.billing_key import billing_key_forms
from gooten_provider.testing import GootenApiServer
from gooten_provider.triggers.gooten import GootenOrderStatusTrigger
from tests.interruption.conftest import child
from tests.operators.conftest import point_connection_at


@pytest.fixture
def api(monkeypatch):
    with GootenApiServer(latency=0.02) as server:
        point_connection_at(server, monkeypatch)
        yield server


def reads(api, order_id):
    return [e for e in api.journal if e.order_id == order_id]


def run_to_the_end(kwargs, timeout=60.0):
    """Run the trigger in a new process to its first event; return the event and the process's output."""
    process = child("trigger_child", {"classpath": CLASSPATH, "kwargs": kwargs})
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return json.loads(output.strip().splitlines()[-1])["event"], output


CLASSPATH = "gooten_provider.triggers.gooten.GootenOrderStatusTrigger"


def test_a_killed_triggerer_resumes_from_the_kwargs_only_reading_and_keeps_the_deadline(api):
    held, shipped = api.add_order(statuses="Hold")["Id"], api.add_order(statuses="Shipped")["Id"]
    deadline = time.time() + 15  # past the first two runs, even on a loaded machine
    _, kwargs = GootenOrderStatusTrigger(
        order_ids=[held, shipped],
        target_statuses=["Shipped"],
        failure_statuses=["Cancelled"],
        poke_interval=0.2,
        end_time=deadline,
    ).serialize()
    kwargs = json.loads(json.dumps(kwargs))  # as the metadata DB stores them

    first = child("trigger_child", {"classpath": CLASSPATH, "kwargs": kwargs})
    while len(reads(api, held)) < 3:  # mid-wait: a few rounds read, the next one due
        assert first.poll() is None, first.stdout.read()
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    killed_output, _ = first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert '"event"' not in killed_output  # it never got to fire

    # Restarted from the same kwargs: it reads again (never writes) and sees the release that came meanwhile.
    api.set_item_statuses(held, "Shipped")
    event, output = run_to_the_end(kwargs)
    assert event["status"] == "success", event
    assert event["statuses"] == {held: ["Shipped"], shipped: ["Shipped"]}
    assert api.writes() == []
    assert {e.method for e in api.journal} == {"GET"}

    # Restarted after the deadline: the wait is not extended; the timeout at once, without a read (the
    # deadline bounds every read, so a round of 10,000 does not run past it either).
    api.set_item_statuses(held, "Hold")
    time.sleep(max(deadline - time.time(), 0) + 0.1)
    before = len(reads(api, held))
    event, late_output = run_to_the_end(kwargs)
    assert event["status"] == "timeout", event
    assert len(reads(api, held)) == before

    for text in (killed_output, output, late_output):
        assert not any(form in text for form in billing_key_forms(api.billing_key))
