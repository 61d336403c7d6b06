"""What a paced request costs in Redis round trips, counted command by command through the Redis client.

Every Redis command of the store goes through ``execute_command`` (no pipelines), and each is one round
trip: the counts here are round trips, not timings (``python -m bench.redis_round_trips`` counts them the
same way under several threads).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from bench.redis_round_trips import CountingRedis
from gooten_provider.client.bucket_fit import ACCEPTED, REFUSED
from gooten_provider.client.pace_tuning import START_RATE
from gooten_provider.client.pacer import Pacer, PaceState
from gooten_provider.client.redis_store import RedisPaceStore
from gooten_provider.client.shared_store import FallbackPaceStore, PaceStoreUnavailable
from gooten_provider.testing import DEFAULT_RECIPE_ID

#: Round trips of one request through a shared pace when its slot is due at once: the slot taken (with
#: the counts, the published state and the pause in its reply), and the answer's count sent at once.
DUE_AT_ONCE = 2
#: ... and when it waited for its slot: the pause is read again after the wait.
WAITED = 3
#: Round trips of the account's answer log read for a fit (after a 429 that found the bucket empty again
#: after a pause): this client's answers and counts not sent yet go with it, and the reply brings the
#: account's counts and the published state too, as a sync's does.
ANSWERS_READ = 1


def counted_store(server) -> tuple[RedisPaceStore, CountingRedis]:
    client = CountingRedis(**server.client_kwargs())
    return RedisPaceStore(client, DEFAULT_RECIPE_ID), client


def other_store(server) -> RedisPaceStore:
    return RedisPaceStore(redis.Redis(**server.client_kwargs()), DEFAULT_RECIPE_ID)


def trips_of(client: CountingRedis, action) -> int:
    before = len(client.commands)
    action()
    return len(client.commands) - before


def test_a_request_whose_slot_is_due_at_once_costs_two_round_trips(redis_server):
    shared, client = counted_store(redis_server)
    pacer = Pacer(store=FallbackPaceStore(shared))
    pacer.record(pacer.acquire(), throttled=False)  # the script loaded, the pace started

    def request() -> None:
        ticket = pacer.acquire()
        pacer.record(ticket, throttled=False)

    costs = []
    for _ in range(8):
        # answers slower than the slow start's spacing (1/START_RATE at most): each slot is free when taken
        time.sleep(1.5 / START_RATE)
        costs.append(trips_of(client, request))
    assert costs == [DUE_AT_ONCE] * 8, client.commands[-3 * 8 :]
    assert set(client.commands[-DUE_AT_ONCE * 8 :]) == {"EVALSHA"}  # each one run of the script
    other = other_store(redis_server)
    other.take_slot(time.monotonic(), 0.0)
    assert other.counts() == (9, 0)  # every answer reached the account at once


def test_the_accounts_answers_are_read_in_one_round_trip_that_sends_this_clients_own(redis_server):
    shared, client = counted_store(redis_server)
    shared.sync()  # the script loaded
    other = other_store(redis_server)
    now = time.monotonic()
    other.publish_state(PaceState("elsewhere", now, {"learnt": 7.0}), None)
    other.log_answer(now - 0.3, ACCEPTED)
    other.note_accepted(now)
    other.sync()
    shared.log_answer(now - 0.2, REFUSED)  # not sent yet
    shared.note_refused(now)
    read = []
    assert trips_of(client, lambda: read.append(shared.answers())) == ANSWERS_READ, client.commands[-3:]
    assert read == [
        [(pytest.approx(now - 0.3, abs=0.01), ACCEPTED), (pytest.approx(now - 0.2, abs=0.01), REFUSED)]
    ]
    assert shared.counts() == (1, 1)  # the account's, from that round trip's reply
    state = shared.shared_state()
    assert state is not None and state.token == "elsewhere"
    other.sync()
    assert other.counts() == (1, 1)  # this client's 429 reached the account in the same round trip


def test_a_request_that_waited_for_its_slot_reads_the_pause_again(redis_server):
    shared, client = counted_store(redis_server)
    pacer = Pacer(store=FallbackPaceStore(shared), ceiling=5.0)
    pacer.record(pacer.acquire(), throttled=False)
    # back to back at 5 requests/s: every slot after the first is 0.2 s after its request
    costs = [trips_of(client, lambda: pacer.record(pacer.acquire(), throttled=False)) for _ in range(3)]
    assert costs == [WAITED] * 3


def test_a_pause_set_while_a_slot_was_waited_for_holds_it(redis_server):
    shared, client = counted_store(redis_server)
    other = other_store(redis_server)
    now = time.monotonic()
    shared.take_slot(now, 0.5)
    slot = shared.take_slot(now, 0.5)  # half a second ahead: the pacer waits for it
    other.pause(now + 2.0)  # another client's Retry-After, during the wait
    assert trips_of(client, lambda: shared.paused_until() == pytest.approx(now + 2.0, abs=0.05)) == 1
    assert shared.paused_until() > slot


def test_a_slot_due_at_once_is_confirmed_from_its_own_reply_once(redis_server):
    shared, client = counted_store(redis_server)
    now = time.monotonic()
    shared.pause(now)  # a pause that ends as the slot is taken
    shared.take_slot(now, 0.0)
    paused = []
    assert trips_of(client, lambda: paused.append(shared.paused_until())) == 0
    assert paused == [pytest.approx(now, abs=0.05)]  # the pause that slot's reply read
    assert trips_of(client, shared.paused_until) == 1  # asked again: Redis answers


def test_a_pause_this_client_set_after_a_slot_due_at_once_is_seen(redis_server):
    shared, _ = counted_store(redis_server)
    now = time.monotonic()
    shared.take_slot(now, 0.0)
    elsewhere = threading.Thread(target=shared.pause, args=(now + 1.0,))  # another thread of the client
    elsewhere.start()
    elsewhere.join()
    assert shared.paused_until() == pytest.approx(now + 1.0, abs=0.05)


def test_another_thread_does_not_answer_from_this_threads_slot(redis_server):
    shared, client = counted_store(redis_server)
    now = time.monotonic()
    shared.take_slot(now, 0.0)  # due at once, in this thread
    other_store(redis_server).pause(now + 1.0)
    seen = []
    elsewhere = threading.Thread(target=lambda: seen.append(trips_of(client, shared.paused_until)))
    elsewhere.start()
    elsewhere.join()
    assert seen == [1]
    assert trips_of(client, shared.paused_until) == 1  # a round trip began since: this one asks too


def test_a_round_trip_failing_after_a_slot_due_at_once_voids_its_confirmation(redis_server):
    """A failure sends the fallback's calls to its own store: the slot's reply may then be long past."""
    shared, client = counted_store(redis_server)
    script = shared._script
    began, fail = threading.Event(), threading.Event()

    def slow_then_refused(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            began.set()
            fail.wait(5)
            raise redis.ConnectionError("Redis went away")
        return script(*args, **kwargs)

    shared._script = slow_then_refused
    failed = []

    def sync_elsewhere():
        try:
            shared.sync()
        except PaceStoreUnavailable as exc:
            failed.append(exc)

    elsewhere = threading.Thread(target=sync_elsewhere)
    elsewhere.start()
    began.wait(5)  # another thread's round trip began before this slot's
    now = time.monotonic()
    shared.take_slot(now, 0.0)  # due at once
    fail.set()
    elsewhere.join()
    assert len(failed) == 1
    assert trips_of(client, shared.paused_until) == 1


def test_coroutines_calling_through_one_thread_never_answer_from_each_others_slot(redis_server):
    """The triggerer's calls run in ``asyncio.to_thread``: one pool thread serves every coroutine in turn."""
    shared, client = counted_store(redis_server)
    other = other_store(redis_server)

    async def main() -> tuple[float, int]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        now = time.monotonic()
        await asyncio.to_thread(shared.take_slot, now, 0.0)  # one coroutine's slot, due at once
        other.pause(now + 1.0)
        before = len(client.commands)
        paused = await asyncio.to_thread(shared.paused_until)  # another's question, in the same thread
        return paused - now, len(client.commands) - before

    paused, trips = asyncio.run(main())
    assert trips == 1
    assert paused == pytest.approx(1.0, abs=0.05)
