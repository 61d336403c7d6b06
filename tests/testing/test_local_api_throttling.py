"""The local Gooten API's rate limit (a gateway's token bucket per Recipe ID), over real HTTP on 127.0.0.1.

Most tests move the buckets' clock by hand (``rate_clock``), so counts of 200s and 429s are exact and no
test depends on how fast the machine is.
"""

from __future__ import annotations

import re
import select
import subprocess
import sys
import threading

import pytest
import requests

from gooten_provider.testing import DEFAULT_BILLING_KEY, DEFAULT_RECIPE_ID, GootenApiServer
from gooten_provider.testing.__main__ import main as cli_main
from gooten_provider.testing.orders import demo_order_specs
from gooten_provider.testing.server import admin_order_path
from gooten_provider.testing.throttling import retry_after_seconds

ORDER_PATH = "/api/v/5/source/api/orders"
TOO_MANY = {"Message": "Too many requests"}


class HandClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture
def throttled(clock):
    """Start servers throttled on the hand clock; each is stopped at teardown."""
    servers: list[GootenApiServer] = []

    def start(rate_limit: float, rate_burst: int | None, **kwargs) -> GootenApiServer:
        server = GootenApiServer(rate_limit=rate_limit, rate_burst=rate_burst, rate_clock=clock, **kwargs)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def read(api: GootenApiServer, order_id: str, recipe_id: str = DEFAULT_RECIPE_ID, http=requests):
    return http.get(f"{api.base_url}{ORDER_PATH}", params={"recipeid": recipe_id, "id": order_id}, timeout=5)


def post_status(api: GootenApiServer, order_id: str, target: str = "Hold"):
    params = {
        "recipeid": DEFAULT_RECIPE_ID,
        "partnerBillingKey": DEFAULT_BILLING_KEY,
        "id": order_id,
        "orderStatusName": target,
    }
    return requests.post(f"{api.base_url}/api/orderstatus", params=params, timeout=5)


def read_codes(
    api: GootenApiServer, order_id: str, count: int, recipe_id: str = DEFAULT_RECIPE_ID
) -> list[int]:
    return [read(api, order_id, recipe_id).status_code for _ in range(count)]


# -- the bucket ----------------------------------------------------------------------------------------


def test_a_full_bucket_lets_the_burst_through_then_answers_429(throttled):
    api = throttled(rate_limit=2, rate_burst=3)
    order_ids = [api.add_order(statuses="New")["Id"] for _ in range(5)]

    replies = [post_status(api, order_id) for order_id in order_ids]

    assert [reply.status_code for reply in replies] == [200, 200, 200, 429, 429]
    assert [reply.json() for reply in replies[3:]] == [TOO_MANY, TOO_MANY]
    assert all(reply.headers["Content-Type"].startswith("application/json") for reply in replies)
    assert [api.item_statuses(order_id) for order_id in order_ids] == [["Hold"]] * 3 + [["New"]] * 2


def test_the_bucket_refills_at_the_rate_up_to_the_burst(throttled, clock):
    api = throttled(rate_limit=4, rate_burst=3)
    order_id = api.add_order()["Id"]

    assert read_codes(api, order_id, 4) == [200, 200, 200, 429]
    clock.advance(0.25)  # one token at 4/s
    assert read_codes(api, order_id, 2) == [200, 429]
    clock.advance(0.125)  # half a token lets nothing through
    assert read_codes(api, order_id, 1) == [429]
    clock.advance(0.125)
    assert read_codes(api, order_id, 2) == [200, 429]
    clock.advance(0.5)  # two tokens' worth
    assert read_codes(api, order_id, 3) == [200, 200, 429]
    clock.advance(60)  # a long pause fills the bucket to the burst, no further
    assert read_codes(api, order_id, 4) == [200, 200, 200, 429]


def test_without_a_burst_the_bucket_holds_one_seconds_worth(throttled):
    api = throttled(rate_limit=2.5, rate_burst=None)
    order_id = api.add_order()["Id"]

    assert api.throttle is not None and api.throttle.rate_burst == 3
    assert read_codes(api, order_id, 4) == [200, 200, 200, 429]


def test_buckets_are_shared_by_every_connection_and_thread(throttled):
    api = throttled(rate_limit=1, rate_burst=5)
    order_id = api.add_order()["Id"]
    codes: list[int] = []
    codes_lock = threading.Lock()
    start = threading.Barrier(8)

    def client() -> None:
        with requests.Session() as session:  # one keep-alive connection per thread
            start.wait()
            for _ in range(4):
                code = read(api, order_id, http=session).status_code
                with codes_lock:
                    codes.append(code)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(codes) == [200] * 5 + [429] * 27
    assert len({entry.connection_id for entry in api.journal}) == 8


def test_the_real_clock_is_the_default():
    with GootenApiServer(rate_limit=0.01, rate_burst=3) as api:  # one token per 100 s
        order_id = api.add_order()["Id"]
        replies = [read(api, order_id) for _ in range(5)]
    assert [reply.status_code for reply in replies] == [200, 200, 200, 429, 429]
    assert 90 <= int(replies[-1].headers["Retry-After"]) <= 100


# -- Retry-After ---------------------------------------------------------------------------------------


def test_retry_after_is_the_whole_seconds_until_a_token_is_due(throttled, clock):
    api = throttled(rate_limit=0.25, rate_burst=1)  # one token per 4 s
    order_id = api.add_order()["Id"]
    assert read(api, order_id).status_code == 200

    retry_afters = []
    for step in (0.0, 1.0, 1.5, 1.0, 0.25):
        clock.advance(step)
        reply = read(api, order_id)
        assert reply.status_code == 429
        retry_afters.append(reply.headers["Retry-After"])
    clock.advance(0.25)

    assert retry_afters == ["4", "3", "2", "1", "1"]  # 4 s, 3 s, 1.5 s, 0.5 s, 0.25 s to go
    assert read(api, order_id).status_code == 200


def test_retry_after_is_at_least_one_second(throttled):
    api = throttled(rate_limit=50, rate_burst=1)  # a token is due in 20 ms
    order_id = api.add_order()["Id"]

    replies = [read(api, order_id) for _ in range(2)]

    assert replies[1].status_code == 429
    assert replies[1].headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("wait", "header"), [(0.001, 1), (1.0, 1), (1.0 + 1e-12, 1), (1.2, 2), (2.0, 2), (2.5, 3), (99.9, 100)]
)
def test_retry_after_rounds_up_to_whole_seconds(wait, header):
    assert retry_after_seconds(wait) == header


def test_retry_after_false_sends_no_retry_after_with_any_429(throttled):
    api = throttled(rate_limit=1, rate_burst=2, retry_after=False)
    order_id = api.add_order()["Id"]
    api.inject_faults(order_id, "429")

    injected, throttled_reply = read(api, order_id), [read(api, order_id) for _ in range(2)][-1]

    assert (injected.status_code, throttled_reply.status_code) == (429, 429)
    assert injected.json() == throttled_reply.json() == TOO_MANY
    assert "Retry-After" not in injected.headers
    assert "Retry-After" not in throttled_reply.headers
    assert [entry.outcome for entry in api.journal] == ["429", "read", "throttled"]


def test_retry_after_true_keeps_one_second_for_injected_429s(throttled):
    api = throttled(rate_limit=0.25, rate_burst=1, retry_after=True)
    order_id = api.add_order()["Id"]
    api.inject_faults(order_id, "429")

    injected, throttled_reply = read(api, order_id), read(api, order_id)

    assert injected.headers["Retry-After"] == "1"
    assert throttled_reply.headers["Retry-After"] == "4"


# -- what counts, and against which bucket -------------------------------------------------------------


def test_each_recipe_id_has_its_own_bucket(throttled):
    api = throttled(rate_limit=1, rate_burst=2)
    order_id = api.add_order()["Id"]
    other = "b3c8d2e5-6f70-4b9c-8d1e-2f3a4b5c6d7e"

    assert read_codes(api, order_id, 3) == [200, 200, 429]
    # Another recipe id is not throttled by the first one's bucket: it gets the API's own answer.
    assert read(api, order_id, other).json() == {"Message": "Invalid recipeId"}
    assert read_codes(api, order_id, 2, other) == [200, 429]
    # The key is the recipe id as sent: another spelling the API accepts has a bucket of its own.
    assert read_codes(api, order_id, 3, DEFAULT_RECIPE_ID.upper()) == [200, 200, 429]
    assert read_codes(api, order_id, 1) == [429]


def test_the_recipe_id_is_compared_after_form_decoding(throttled):
    api = throttled(rate_limit=1, rate_burst=1)
    order_id = api.add_order()["Id"]
    percent_encoded = "".join(f"%{ord(char):02X}" for char in DEFAULT_RECIPE_ID)

    assert read(api, order_id).status_code == 200
    reply = requests.get(f"{api.base_url}{ORDER_PATH}?recipeid={percent_encoded}&id={order_id}", timeout=5)

    assert reply.status_code == 429


def test_every_api_route_takes_a_token_and_the_admin_page_and_404s_do_not(throttled):
    api = throttled(rate_limit=1, rate_burst=3)
    order_id = api.add_order(statuses="New")["Id"]
    search_params = {"recipeid": DEFAULT_RECIPE_ID, "partnerBillingKey": DEFAULT_BILLING_KEY}

    search = requests.get(f"{api.base_url}/api/ordersearch", params=search_params, timeout=5)
    assert (search.status_code, read(api, order_id).status_code) == (200, 200)
    assert post_status(api, order_id).status_code == 200
    assert requests.get(f"{api.base_url}/api/ordersearch", params=search_params, timeout=5).status_code == 429
    assert read(api, order_id).status_code == 429
    assert post_status(api, order_id, "New").status_code == 429

    # Sent with the throttled recipe id, yet not throttled: neither is an API call.
    recipe = {"recipeid": DEFAULT_RECIPE_ID}
    admin = requests.get(f"{api.base_url}{admin_order_path(order_id)}", params=recipe, timeout=5)
    missing = requests.get(f"{api.base_url}/api/nothing-here", params=recipe, timeout=5)

    assert (admin.status_code, missing.status_code) == (200, 404)
    assert [entry.outcome for entry in api.journal] == [
        "search",
        "read",
        "updated",
        "throttled",
        "throttled",
        "throttled",
        "admin_page",
        "not_found",
    ]


# -- nothing happens to a throttled request, and the journal says so -----------------------------------


def test_a_throttled_write_applies_nothing_and_consumes_no_fault(throttled, clock):
    api = throttled(rate_limit=1, rate_burst=1)
    order_id = api.add_order(statuses=["New", "Pending"])["Id"]
    api.inject_faults(order_id, "500", method="POST")
    assert read(api, order_id).status_code == 200

    refused = post_status(api, order_id)

    assert refused.status_code == 429
    assert api.item_statuses(order_id) == ["New", "Pending"]
    assert api.applied_writes(order_id) == []
    assert api.pending_faults(order_id) == 1
    clock.advance(1)
    assert post_status(api, order_id).status_code == 500  # the queued fault is still there
    clock.advance(1)
    assert post_status(api, order_id).json() == {"HadError": False}
    assert api.item_statuses(order_id) == ["Hold", "Hold"]


def test_the_journal_marks_throttled_requests(throttled):
    api = throttled(rate_limit=1, rate_burst=1)
    order_id = api.add_order(statuses="New")["Id"]

    post_status(api, order_id, "Hold")
    post_status(api, order_id, "Cancelled")

    admitted, refused = api.writes(order_id)
    assert (admitted.throttled, admitted.outcome, admitted.applied) == (False, "updated", True)
    assert (refused.throttled, refused.outcome, refused.applied, refused.fault) == (
        True,
        "throttled",
        False,
        None,
    )
    assert (refused.order_id, refused.target_status, refused.key_check, refused.recipe_check) == (
        order_id,
        "Cancelled",
        "ok",
        "ok",
    )
    assert refused.started <= refused.finished


def test_throttled_requests_still_cost_the_latency():
    with GootenApiServer(rate_limit=0.01, rate_burst=1, latency=0.05) as api:
        order_id = api.add_order()["Id"]
        read(api, order_id)
        read(api, order_id)
    refused = api.journal[-1]
    assert refused.throttled
    assert refused.duration >= 0.05


# -- turning it on and off -----------------------------------------------------------------------------


def test_without_a_rate_limit_nothing_is_throttled(clock):
    with GootenApiServer(rate_clock=clock) as api:
        order_id = api.add_order()["Id"]
        assert api.throttle is None
        assert set(read_codes(api, order_id, 30)) == {200}


def test_set_rate_limit_while_running_starts_and_ends_throttling(clock):
    with GootenApiServer(rate_clock=clock) as api:
        order_id = api.add_order()["Id"]

        api.set_rate_limit(1, 2)
        assert read_codes(api, order_id, 3) == [200, 200, 429]
        api.set_rate_limit(1, 1)  # a new limit starts with full buckets
        assert read_codes(api, order_id, 2) == [200, 429]
        api.set_rate_limit(None)
        assert set(read_codes(api, order_id, 10)) == {200}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rate_limit": 0}, "rate_limit must be above 0 requests per second"),
        ({"rate_limit": -5}, "rate_limit must be above 0 requests per second"),
        ({"rate_limit": float("nan")}, "rate_limit must be above 0 requests per second"),
        ({"rate_limit": float("inf")}, "rate_limit must be above 0 requests per second"),
        ({"rate_limit": True}, "rate_limit must be a number of requests per second, got True"),
        ({"rate_limit": "50"}, "rate_limit must be a number of requests per second, got '50'"),
        (
            {"rate_limit": 5, "rate_burst": 0},
            "rate_burst must be a whole number of requests, 1 or more, got 0",
        ),
        ({"rate_limit": 5, "rate_burst": 2.5}, "rate_burst must be a whole number of requests, 1 or more"),
        ({"rate_burst": 5}, "rate_burst=5 needs a rate_limit"),
    ],
)
def test_bad_rate_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        GootenApiServer(**settings)


def test_the_pytest_factory_takes_the_rate_settings(gooten_api_factory, clock):
    api = gooten_api_factory(rate_limit=1, rate_burst=2, rate_clock=clock, retry_after=False)
    order_id = api.add_order()["Id"]

    replies = [read(api, order_id) for _ in range(3)]

    assert [reply.status_code for reply in replies] == [200, 200, 429]
    assert "Retry-After" not in replies[-1].headers


# -- command line --------------------------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [True, False], ids=["retry-after", "no-retry-after"])
def test_cli_rate_flags_throttle_the_server(retry_after):
    flags = ["--rate-limit", "0.01", "--rate-burst", "2"] + ([] if retry_after else ["--no-retry-after"])
    command = [sys.executable, "-m", "gooten_provider.testing", "--port", "0", "--demo-orders", *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "the CLI printed nothing"
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+) ", process.stdout.readline())
        assert match
        order_id = demo_order_specs()[0]["id"]
        replies = [
            requests.get(
                f"{match.group(1)}{ORDER_PATH}",
                params={"recipeid": DEFAULT_RECIPE_ID, "id": order_id},
                timeout=5,
            )
            for _ in range(3)
        ]
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert [reply.status_code for reply in replies] == [200, 200, 429]
    assert replies[-1].json() == TOO_MANY
    assert ("Retry-After" in replies[-1].headers) is retry_after


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate-burst", "5"], "--rate-burst needs --rate-limit"),
        (["--rate-limit", "0"], "argument --rate-limit: must be above 0, got 0"),
        (
            ["--rate-limit", "5", "--rate-burst", "0"],
            "argument --rate-burst: must be a whole number, 1 or more",
        ),
        (["--no-retry-after", "--retry-after", "2"], "not allowed with argument --no-retry-after"),
    ],
)
def test_cli_refuses_bad_rate_flags(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--port", "0", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
