"""The shared pace in a real redis-server: one atomic schedule, one pause, one throttling event."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import time

import pytest
import redis

from gooten_provider.client.bucket_fit import ACCEPTED, EMPTIED, HISTORY_SECONDS, REFUSED
from gooten_provider.client.pace_tuning import CLUSTER_GAP, START_RATE
from gooten_provider.client.pacer import LocalPaceStore, Pacer, PaceState
from gooten_provider.client.redis_store import STATE_TTL_SECONDS, RedisPaceStore, pace_key
from gooten_provider.client.shared_store import FallbackPaceStore, PaceStoreUnavailable
from gooten_provider.testing import DEFAULT_RECIPE_ID

PROCESSES = 8
TAKES_PER_PROCESS = 25
# slots 250 ms apart: far more than a busy machine's delay in reading the clock
INTERVAL = 0.25


def store(server, recipe_id=DEFAULT_RECIPE_ID, **kwargs):
    return RedisPaceStore.connect(
        recipe_id, host="127.0.0.1", port=server.port, password=server.password, **kwargs
    )


def pacer(server, recipe_id=DEFAULT_RECIPE_ID):
    return Pacer(store=FallbackPaceStore(store(server, recipe_id)))


def raw(server):
    return redis.Redis(**server.client_kwargs())


def _take_many(port, password, barrier, results):
    shared = RedisPaceStore.connect(DEFAULT_RECIPE_ID, host="127.0.0.1", port=port, password=password)
    barrier.wait()
    # time.monotonic() is one clock for every process of this machine
    results.put([shared.take_slot(time.monotonic(), INTERVAL) for _ in range(TAKES_PER_PROCESS)])


def test_eight_processes_share_one_schedule_without_losing_a_slot(redis_server):
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(target=_take_many, args=(redis_server.port, redis_server.password, barrier, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    slots = sorted(s for _ in workers for s in results.get(timeout=60))
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0

    total = PROCESSES * TAKES_PER_PROCESS
    assert len(slots) == total
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    # every slot is its own, one interval after the one before (give or take reading the clock)
    assert min(gaps) > 0.5 * INTERVAL, f"two requests got slots {min(gaps) * 1000:.1f} ms apart"
    assert max(gaps) < 1.5 * INTERVAL
    assert slots[-1] - slots[0] == pytest.approx((total - 1) * INTERVAL, rel=0.01)


def test_a_retry_after_seen_by_one_client_pauses_every_client_of_the_account(redis_server):
    seen_it, other = pacer(redis_server), pacer(redis_server)
    other.record(other.acquire(), throttled=False)

    seen_it.record(seen_it.acquire(), throttled=True, retry_after=1.0)

    started = time.monotonic()
    other.acquire()
    assert time.monotonic() - started == pytest.approx(1.0, abs=0.15)
    another_account = pacer(redis_server, recipe_id="another-recipe")
    started = time.monotonic()
    another_account.acquire()
    assert time.monotonic() - started < 0.1  # other accounts are not held


def test_a_pause_is_never_shortened(redis_server):
    shared = store(redis_server)
    now = time.monotonic()
    shared.pause(now + 3.0)
    shared.pause(now + 1.0)
    assert shared.paused_until() == pytest.approx(now + 3.0, abs=0.05)


def test_a_throttling_event_seen_by_one_client_paces_every_client_once(redis_server):
    first, second = pacer(redis_server), pacer(redis_server)
    for _ in range(30):  # both clients send, the account's rate rising in its slow start
        for client in (first, second):
            ticket = client.acquire()
            client.record(ticket, throttled=False)
    sent_before = second.acquire()
    first.record(first.acquire(), throttled=True)
    assert first.paced and first.events == 1
    # the other client paces by the same curve from its next request on, without a 429 of its own
    second.record(second.acquire(), throttled=False)
    assert second.paced
    assert second.rate == pytest.approx(first.rate, rel=0.05)
    # a 429 to a request the other client sent before the event is part of it: no second decrease
    second.record(sent_before, throttled=True)
    assert first.events + second.events == 1


def test_a_429_after_the_interval_is_a_new_event_for_every_client(redis_server):
    first, second = pacer(redis_server), pacer(redis_server)
    first.record(first.acquire(), throttled=True)
    second.record(second.acquire(), throttled=False)
    rate = second.rate
    time.sleep(CLUSTER_GAP + 0.05)  # not in a row with the first: a new event
    second.record(second.acquire(), throttled=True)
    assert second.events == 1
    first.record(first.acquire(), throttled=False)
    assert first.rate < rate  # the second event, published by the other client, lowered this one too


def test_two_events_published_at_once_keep_the_first(redis_server):
    """The store's compare-and-set: an event built on a stale one does not replace what was published."""
    one, two = store(redis_server), store(redis_server)
    now = time.monotonic()
    held = one.publish_state(PaceState("a", now, {"learnt": 10.0}), None)
    assert held.token == "a" and held.at == pytest.approx(now, abs=0.01)
    lost = two.publish_state(PaceState("b", now, {"learnt": 99.0}), None)
    assert (lost.token, dict(lost.values)) == ("a", {"learnt": 10.0})
    won = two.publish_state(PaceState("c", now + 1, {"learnt": 8.0}), "a")
    assert won.token == "c"
    assert two.shared_state() == won


def test_the_answers_every_client_counts_are_the_accounts(redis_server):
    """The controller measures the account's limit from these counts, not one client's share of it."""
    one, two = store(redis_server), store(redis_server)
    now = time.monotonic()
    for _ in range(3):
        one.note_accepted(now)
    two.note_accepted(now)
    two.note_refused(now)
    assert one.counts() == (3, 0)  # its own, not yet sent
    one.take_slot(now, 0.0)
    two.take_slot(now, 0.0)  # each slot taken carries what its client counted since its last call
    one.take_slot(now, 0.0)
    assert one.counts() == two.counts() == (4, 1)
    one.note_refused(now)
    one.publish_state(PaceState("a", now, {}), None)  # a publication carries them too
    two.take_slot(now, 0.0)
    assert two.counts() == (4, 2)


def test_a_pacer_sends_each_answer_to_the_account_at_once(redis_server):
    """Not with its next slot: at a low pace, one slot booked per task, that is a second later."""
    client = pacer(redis_server)
    client.record(client.acquire(), throttled=False)
    other = store(redis_server)
    other.take_slot(time.monotonic(), 0.0)
    assert other.counts() == (1, 0)


def test_a_state_another_version_published_is_left_alone(redis_server):
    """A state of the controller before issue 19's (kept an hour) neither breaks nor paces a client."""
    store(redis_server).publish_state(PaceState("old", time.monotonic(), {"learnt": 5.0, "w_max": 6.0}), None)
    client = pacer(redis_server)
    client.record(client.acquire(), throttled=False)
    assert not client.paced
    client.record(client.acquire(), throttled=True)  # its own 429 replaces it
    assert client.paced and client.events == 1
    assert client.store.shared_state().token != "old"


def test_a_shared_pace_starts_slow_then_doubles_until_the_first_429(redis_server):
    client = pacer(redis_server)
    started = time.monotonic()
    sent = []
    for _ in range(5):  # nothing answered yet: the start rate, doubling every SLOW_START_DOUBLING
        sent.append(client.acquire() - started)
    assert sent == pytest.approx([i / START_RATE for i in range(5)], abs=0.03)
    for _ in range(60):  # answers come back: the rate keeps doubling
        client.record(client.acquire(), throttled=False)
    assert time.monotonic() - started < 60 / START_RATE / 2  # far faster than the start rate
    assert not client.paced  # still the slow start: no 429 yet


def test_a_client_held_by_a_long_pause_asks_again_when_it_ends_not_all_along(redis_server, monkeypatch):
    seen_it, held = pacer(redis_server), pacer(redis_server)
    held.record(held.acquire(), throttled=False)
    seen_it.record(seen_it.acquire(), throttled=True, retry_after=3.0)
    calls = []
    real_run = RedisPaceStore._run
    monkeypatch.setattr(
        RedisPaceStore, "_run", lambda self, *args: calls.append(args[0]) or real_run(self, *args)
    )
    started = time.monotonic()
    held.acquire()
    assert time.monotonic() - started == pytest.approx(3.0, abs=0.2)
    assert calls.count("take") <= 4, calls  # not one every 50 ms for 3 s


def test_no_slot_is_held_further_ahead_than_the_horizon(redis_server):
    shared = store(redis_server)
    now = time.monotonic()
    taken = [shared.take_slot_within(now, 0.1, 0.3) for _ in range(8)]
    assert [ok for _slot, ok in taken] == [True] * 4 + [False] * 4
    assert max(slot for slot, ok in taken if ok) <= now + 0.3 + 0.01
    assert shared.take_slot_within(now, 0.1, 0.3)[0] == pytest.approx(now + 0.4, abs=0.01)  # held nothing


def test_neither_the_recipe_id_nor_the_billing_key_reaches_redis(redis_server, gooten_api):
    """Through the whole client: a 429, a pause, an event, accepted answers; then every key and value read."""
    from gooten_provider.client import GootenClient

    order_id = gooten_api.add_order(statuses="New")["Id"]
    client = GootenClient(
        gooten_api.recipe_id,
        gooten_api.billing_key,
        base_url=gooten_api.base_url,
        pace_store=FallbackPaceStore(store(redis_server, gooten_api.recipe_id)),
    )
    client.get_order_status(order_id)
    client.pacer.record(client.pacer.acquire(), throttled=True, retry_after=0.2)
    client.get_order_status(order_id)
    db = raw(redis_server)
    keys = sorted(db.keys("*"))
    key = pace_key(gooten_api.recipe_id)
    assert keys == [key.encode(), f"{key}:answers".encode()]  # the pace and its answer log, nothing else
    values = [v for pair in db.hgetall(key).items() for v in pair] + db.lrange(f"{key}:answers", 0, -1)
    assert db.llen(f"{key}:answers") >= 3  # the answers were logged (two accepted, one refused)
    stored = b" ".join(keys + values)
    for secret in (gooten_api.recipe_id, *client.secret_forms):
        assert secret.encode() not in stored
    assert all(0 < db.ttl(key) <= STATE_TTL_SECONDS for key in keys)  # forgotten when unused


def test_an_unreachable_redis_is_reported_as_such_at_once(redis_server):
    with pytest.raises(PaceStoreUnavailable, match="AuthenticationError"):
        RedisPaceStore.connect(
            DEFAULT_RECIPE_ID, host="127.0.0.1", port=redis_server.port, password="wrong"
        ).started()
    redis_server.kill()
    started = time.monotonic()
    with pytest.raises(PaceStoreUnavailable, match="ConnectionError"):
        store(redis_server).take_slot(time.monotonic(), 0.0)
    assert time.monotonic() - started < 1.0  # refused at once: no retries of its own


def test_the_fallback_paces_alone_says_so_once_and_uses_redis_again_when_it_is_back(
    redis_server, caplog, monkeypatch
):
    monkeypatch.setattr("gooten_provider.client.shared_store.RETRY_SHARED_AFTER_SECONDS", 0.2)
    fallback = FallbackPaceStore(store(redis_server))
    client = Pacer(store=fallback)
    client.record(client.acquire(), throttled=False)
    assert fallback.shared
    redis_server.kill()
    with caplog.at_level(logging.INFO, logger="gooten_provider.client.shared_store"):
        down_since = time.monotonic()
        while time.monotonic() - down_since < 0.7:  # Redis tried again (and failed) every 0.2 s
            client.record(client.acquire(), throttled=False)
            time.sleep(0.01)
        assert not fallback.shared
        assert fallback.failures >= 3
        assert isinstance(fallback._local, LocalPaceStore)
        redis_server.start()
        time.sleep(0.25)
        client.record(client.acquire(), throttled=False)
    assert fallback.shared
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO], messages
    assert "unreachable (ConnectionError)" in messages[0][1] and "is back" in messages[1][1]
    assert redis_server.password not in caplog.text


def test_the_answers_every_client_logs_are_the_accounts_log_in_each_clients_clock(redis_server):
    """A 429 after a pause is fitted to the account's answers: every client's, each at its request's time."""
    one = store(redis_server)
    # on another machine, whose clock reads 1,000 s ahead
    two = RedisPaceStore(raw(redis_server), DEFAULT_RECIPE_ID, clock=lambda: time.monotonic() + 1000.0)
    now = time.monotonic()
    one.log_answer(now - 0.30, ACCEPTED)
    two.log_answer(now + 1000.0 - 0.20, ACCEPTED)
    one.log_answer(now - 0.10, EMPTIED)
    one.sync()  # the log goes with a round trip that counts, none of its own
    assert [kind for _, kind in two.answers()] == [ACCEPTED, ACCEPTED, EMPTIED]  # two's own unsent first
    tickets = [ticket for ticket, _ in one.answers()]
    assert tickets == pytest.approx([now - 0.30, now - 0.20, now - 0.10], abs=0.01)
    tickets = [ticket for ticket, _ in two.answers()]
    assert tickets == pytest.approx([now + 999.70, now + 999.80, now + 999.90], abs=0.01)


def test_the_account_log_keeps_the_last_thirty_seconds(redis_server):
    shared = store(redis_server)
    now = time.monotonic()
    shared.log_answer(now - HISTORY_SECONDS - 5.0, REFUSED)
    shared.log_answer(now - 1.0, ACCEPTED)
    shared.sync()
    late = store(redis_server)  # a batch that reaches Redis late: the window is the newest request's
    late.log_answer(now - HISTORY_SECONDS - 2.0, REFUSED)
    late.sync()
    assert shared.answers() == [(pytest.approx(now - 1.0, abs=0.01), ACCEPTED)]


@pytest.mark.parametrize("failed", ["sync", "answers"])
def test_an_answer_log_that_could_not_be_sent_goes_with_the_next_round_trip(redis_server, failed):
    shared = store(redis_server)
    now = time.monotonic()
    shared.log_answer(now, ACCEPTED)
    shared.note_accepted(now)
    redis_server.kill()
    with pytest.raises(PaceStoreUnavailable):
        getattr(shared, failed)()
    redis_server.start()
    assert [kind for _, kind in shared.answers()] == [ACCEPTED]
    other = store(redis_server)
    other.sync()
    assert other.counts() == (1, 0)  # the count kept too, sent once


def test_an_account_log_out_of_reach_leaves_the_client_its_own(redis_server):
    """Redis down: logging and reading the account's answers fail over like every other call."""
    fallback = FallbackPaceStore(store(redis_server))
    redis_server.kill()
    fallback.log_answer(time.monotonic(), ACCEPTED)
    assert fallback.answers() == [(pytest.approx(time.monotonic(), abs=0.5), ACCEPTED)]
    assert not fallback.shared
