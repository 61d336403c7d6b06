"""The client's adaptive rate control against the local API throttling like a gateway (loopback HTTP)."""

import threading
import time

import pytest

from gooten_provider.client.bucket_fit import ACCEPTED, EMPTIED, REFUSED
from gooten_provider.client.pacer import LocalPaceStore, Pacer
from gooten_provider.exceptions import GootenRateLimitError
from gooten_provider.testing import GootenApiServer
from tests.client.test_client_over_http import make_client


class FakeClock:
    """A clock that moves only when told to, or when the controller sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def controller(clock: FakeClock) -> Pacer:
    return Pacer(clock=clock, sleep=clock.sleep)


def test_nothing_is_paced_until_the_first_429():
    clock = FakeClock()
    pacer = controller(clock)
    for _ in range(100):
        pacer.record(pacer.acquire(), throttled=False)
    assert clock.slept == []
    assert not pacer.paced


def test_a_429_lowers_the_rate_once_per_event_and_successes_raise_it_again():
    clock = FakeClock()
    pacer = controller(clock)
    for _ in range(40):  # answered 10 ms after each was sent: the slow start raises the pace
        ticket = pacer.acquire()
        clock.now += 0.01
        pacer.record(ticket, throttled=False)
    in_flight = [pacer.acquire() for _ in range(20)]  # sent before any of their answers came
    rate_before = pacer.rate
    pacer.record(in_flight[-1], throttled=True)
    first_rate = pacer.rate
    assert pacer.events == 1 and pacer.paced
    assert first_rate < rate_before
    for ticket in in_flight[:-1]:  # answers to requests already sent: the same event
        pacer.record(ticket, throttled=True)
    assert pacer.events == 1
    assert pacer.rate == first_rate
    for _ in range(200):  # paced now: every acquire waits its slot; successes raise the rate
        pacer.record(pacer.acquire(), throttled=False)
    assert pacer.rate > first_rate


def test_a_retry_after_pauses_every_thread(clock_free=None):
    clock = FakeClock()
    pacer = controller(clock)
    ticket = pacer.acquire()
    pacer.record(ticket, throttled=True, retry_after=2.0)
    start = clock.now
    pacer.acquire()
    assert clock.now - start >= 2.0


@pytest.fixture
def throttled_api():
    with GootenApiServer(rate_limit=20, rate_burst=2, retry_after=True, latency=0.005) as server:
        yield server


def test_one_threads_retry_after_holds_the_other_threads(throttled_api):
    """Thread B, started once thread A's request was answered 429 with Retry-After: 1, waits that second."""
    throttled_api.set_rate_limit(None)
    throttled_api.retry_after = 1.0
    first, second = throttled_api.add_orders(2)
    throttled_api.inject_faults(first, "429", method="GET")
    client = make_client(throttled_api)
    thread_a = threading.Thread(target=client.get_order_status, args=(first,))
    thread_a.start()
    deadline = time.monotonic() + 5
    while client.pacer.throttled == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    client.get_order_status(second)  # thread B: this test's own thread
    thread_a.join(5)
    (answered_429,) = [e for e in throttled_api.journal if e.fault == "429"]
    (read_b,) = [e for e in throttled_api.journal if e.order_id == second]
    retry_a = [e for e in throttled_api.journal if e.order_id == first and e.fault is None]
    assert read_b.started - answered_429.finished >= 0.9  # held by A's Retry-After, from the journal
    assert retry_a and retry_a[0].started - answered_429.finished >= 0.9


def test_a_burst_of_threads_is_paced_and_every_read_gets_its_answer(throttled_api):
    throttled_api.set_rate_limit(10, 1)
    ids = throttled_api.add_orders(6)
    client = make_client(throttled_api)
    threads = [threading.Thread(target=client.get_order_status, args=(i,)) for i in ids * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    journal = throttled_api.journal
    assert any(e.throttled for e in journal)
    assert len([e for e in journal if not e.throttled]) == 24  # no read failed on a 429
    assert client.pacer.paced


def test_throttling_that_ends_is_recovered_from(throttled_api):
    throttled_api.set_rate_limit(5, 1)  # 12 reads at once meet a 429 for sure
    ids = throttled_api.add_orders(3)
    client = make_client(throttled_api)
    threads = [threading.Thread(target=client.get_order_status, args=(i,)) for i in ids * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert client.pacer.paced
    throttled_api.set_rate_limit(None)
    rate_when_lifted = client.pacer.rate
    before = len(throttled_api.journal)
    for order_id in ids * 10:
        client.get_order_status(order_id)
    after = throttled_api.journal[before:]
    assert len(after) == 30 and not any(e.throttled for e in after)
    assert client.pacer.rate > rate_when_lifted  # answers without a 429 raise the rate again


def test_throttle_timeout_expires_into_a_clear_error_that_names_throttling(throttled_api):
    throttled_api.set_rate_limit(0.2, 1)  # one request every 5 s
    order_id = throttled_api.add_order(statuses="New")["Id"]
    client = make_client(throttled_api, throttle_timeout=1.5)
    client.get_order_status(order_id)  # takes the one token
    started = time.monotonic()
    with pytest.raises(
        GootenRateLimitError,
        match=r"429 Too Many Requests .* asked to wait 5 s more, past throttle_timeout \(1.5 s\)",
    ):
        client.update_order_status(order_id, "Hold")
    assert time.monotonic() - started < 5
    assert throttled_api.applied_writes() == []


def test_adaptive_rate_off_restores_retrying_429s_up_to_max_retries(throttled_api):
    throttled_api.set_rate_limit(None)
    throttled_api.retry_after = 0.01
    order_id = throttled_api.add_order(statuses="New")["Id"]
    throttled_api.inject_faults(order_id, "429", "429", "429", method="POST")
    client = make_client(throttled_api, adaptive_rate=False, max_retries=1)
    with pytest.raises(GootenRateLimitError, match="after every retry"):
        client.update_order_status(order_id, "Hold")
    assert not client.pacer.adaptive
    assert len(throttled_api.writes(order_id)) == 2


@pytest.mark.parametrize("adaptive", [True, False])
def test_a_retry_after_pauses_every_thread_only_when_the_pace_is_adaptive(adaptive):
    # Adaptive, the gateway's Retry-After holds every thread of the client; off, the thread that met it
    # waits alone (its own retry delay), as in the first release: a shared pause without a learnt pace
    # makes every thread resume at once into a small burst, again and again.
    clock = FakeClock()
    pacer = Pacer(adaptive=adaptive, clock=clock, sleep=clock.sleep)
    pacer.record(pacer.acquire(), throttled=True, retry_after=1.0)
    pacer.acquire()  # another thread's next request
    waited = sum(clock.slept)
    if adaptive:
        assert waited >= 1.0
    else:
        assert waited == 0


def test_each_answer_is_logged_and_a_429_after_a_pause_is_told_from_one_sent_before_it():
    """The fit counts the bucket found empty once per pause: 429s to requests sent before it are the same."""
    clock = FakeClock()
    store = LocalPaceStore(clock(), shared=True)  # a shared store keeps the account's answer log
    pacer = Pacer(clock=clock, sleep=clock.sleep, store=store)
    first, in_flight = pacer.acquire(), pacer.acquire()
    pacer.record(first, throttled=False)
    clock.now += 0.05
    refused = pacer.acquire()
    pacer.record(refused, throttled=True, retry_after=1.0)  # found the bucket empty: a pause begins
    pacer.record(in_flight, throttled=True, retry_after=1.0)  # sent before that pause: the same emptiness
    after = pacer.acquire()  # waits out the pause
    pacer.record(after, throttled=True, retry_after=1.0)  # found it empty again
    assert after >= refused + 1.0
    kinds = dict(store.answers())
    assert (kinds[first], kinds[in_flight], kinds[refused], kinds[after]) == (
        ACCEPTED,
        REFUSED,
        EMPTIED,
        EMPTIED,
    )
    assert pacer.paced
