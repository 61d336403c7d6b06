"""An account's pace kept in Redis, shared by every client of every task (a :class:`PaceStore`).

The store only stores and answers atomically; the controller's math stays in
:mod:`gooten_provider.client.pacer`. One Lua script runs every operation, so each is atomic across
clients, and with Redis's own clock (``TIME``): clients on machines whose clocks disagree still share one
schedule. Times cross the wire as offsets from Redis's now, converted to and from each client's clock.

The account's key, ``gooten:pace:{<hash>}``, is named from a SHA-256 of the Recipe ID (neither the Recipe ID
nor the billing key is written to Redis; its braces, a Redis Cluster hash tag, would keep any key added
beside it on its node). It is a hash: the next free send slot (``tat``: GCRA's theoretical arrival time),
the pause (a ``Retry-After`` any client saw), when the pace started, the answers accepted and refused so far
(two counters), and the controller's state after the last 429 (its token, time and numbers, as JSON). Beside
it, ``gooten:pace:{<hash>}:answers``: a list of the account's last answers (when each request left, in
Redis's clock, and what became of it), which the pacer fits the gateway's limit to after a ``Retry-After``;
every client's answers go with the round trips it makes anyway. Both expire after :data:`STATE_TTL_SECONDS`
unused; the next task then starts afresh (a slow start).

What a request costs in round trips is said in :class:`RedisPaceStore`.

Needs the ``redis`` package (``pip install "airflow-provider-gooten[redis]"``); every Redis failure
becomes :class:`~gooten_provider.client.shared_store.PaceStoreUnavailable`, so that
:class:`~gooten_provider.client.shared_store.FallbackPaceStore` paces the client alone meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from gooten_provider.client.bucket_fit import HISTORY_ANSWERS, HISTORY_SECONDS, Answer
from gooten_provider.client.pacer import PaceState
from gooten_provider.client.shared_store import PaceStoreUnavailable

if TYPE_CHECKING:
    import redis

KEY_PREFIX = "gooten:pace:"
#: The account's state is forgotten after this many seconds without a request.
STATE_TTL_SECONDS = 3600
#: Seconds a Redis call may take before the client paces itself (Redis answers in well under 1 ms).
REDIS_TIMEOUT_SECONDS = 1.0
# Lua has no infinity that survives Redis's argument conversion: a horizon this far means none.
_NO_HORIZON = 1e12
# A sync's reply: the published state (token, time, values) and the account's counts (accepted, refused).
_SYNC_REPLY_ITEMS = 5

# ARGV[1] the operation, ARGV[2] the keys' TTL, then per operation.
# Numbers go back as strings (Redis would cut a Lua number to an integer); times as offsets from now.
_SCRIPT = """
local pace, log = KEYS[1], KEYS[2]
local op, ttl = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000

-- answers: "offset:kind,offset:kind,..." (each request's ticket as an offset from now, what became of it)
local function log_answers(answers)
  if answers == nil or answers == '' then return end
  for offset, kind in string.gmatch(answers, '([^:,]+):(%d)') do
    redis.call('RPUSH', log, string.format('%.6f:%s', now + tonumber(offset), kind))
  end
  redis.call('LTRIM', log, -LOG_ANSWERS, -1)
  redis.call('EXPIRE', log, ttl)
end

local function count_answers(accepted, refused)
  return {tostring(redis.call('HINCRBY', pace, 'accepted', tonumber(accepted))),
          tostring(redis.call('HINCRBY', pace, 'refused', tonumber(refused)))}
end

local function started()
  redis.call('HSETNX', pace, 'started', tostring(now))
  return tonumber(redis.call('HGET', pace, 'started'))
end

local function state()
  local s = redis.call('HMGET', pace, 'token', 'at', 'values')
  return {s[1] or '', tostring((tonumber(s[2]) or now) - now), s[3] or '{}'}
end

-- what a sync does: counts and logs the caller's answers; returns token, at, values, accepted, refused
local function sync(accepted, refused, answers)
  local totals = count_answers(accepted, refused)
  log_answers(answers)
  redis.call('EXPIRE', pace, ttl)
  local st = state()
  return {st[1], st[2], st[3], totals[1], totals[2]}
end

if op == 'take' then
  -- ARGV[3]: the interval, ARGV[4]: the horizon, ARGV[5]: answers accepted since the caller's last call,
  -- ARGV[6]: 429s counted since the caller's last call, ARGV[7]: answers to log
  local totals = count_answers(ARGV[5], ARGV[6])
  log_answers(ARGV[7])
  local interval, horizon = tonumber(ARGV[3]), tonumber(ARGV[4])
  local s = redis.call('HMGET', pace, 'tat', 'paused')
  local tat, paused = tonumber(s[1]) or now, tonumber(s[2]) or 0
  local slot = math.max(now, paused)
  if interval > 0 then slot = math.max(slot, tat) end
  local taken = '0'
  if slot - now <= horizon then
    taken = '1'
    redis.call('HSET', pace, 'tat', tostring(slot + interval))
  end
  local from = started()
  redis.call('EXPIRE', pace, ttl)
  local st = state()
  return {tostring(slot - now), taken, tostring(from - now), tostring(paused - now), st[1], st[2], st[3],
          totals[1], totals[2]}
elseif op == 'paused' then
  return tostring((tonumber(redis.call('HGET', pace, 'paused')) or 0) - now)
elseif op == 'pause' then
  -- ARGV[3]: seconds from now
  local paused = tonumber(redis.call('HGET', pace, 'paused')) or 0
  redis.call('HSET', pace, 'paused', tostring(math.max(paused, now + tonumber(ARGV[3]))))
  redis.call('EXPIRE', pace, ttl)
  return 'OK'
elseif op == 'sync' then
  -- ARGV[3] and ARGV[4]: answers accepted and 429s counted since the caller's last call, ARGV[5]: answers
  -- to log
  return sync(ARGV[3], ARGV[4], ARGV[5])
elseif op == 'answers' then
  -- ARGV[3]: seconds back from the newest answer, then as sync's ARGV[3] to ARGV[5]; returns what sync
  -- does (the caller's answers are in the log read), then offset, kind, offset, kind, ... oldest first
  local out = sync(ARGV[4], ARGV[5], ARGV[6])
  local entries = redis.call('LRANGE', log, 0, -1)
  local newest = nil
  for _, entry in ipairs(entries) do  -- the newest request, not the last logged (a batch may come late)
    local at = tonumber(string.match(entry, '^([^:]+)'))
    if newest == nil or at > newest then newest = at end
  end
  for _, entry in ipairs(entries) do
    local at, kind = string.match(entry, '^([^:]+):(%d)$')
    if newest ~= nil and tonumber(at) >= newest - tonumber(ARGV[3]) then
      out[#out + 1] = string.format('%.6f', tonumber(at) - now)
      out[#out + 1] = kind
    end
  end
  return out
elseif op == 'started' then
  local from = started()
  redis.call('EXPIRE', pace, ttl)
  return tostring(from - now)
elseif op == 'publish' then
  -- ARGV[3]: the token it replaces ('' for none), ARGV[4]: its token, ARGV[5]: its time (offset),
  -- ARGV[6]: its values (JSON), ARGV[7] and ARGV[8]: answers accepted and 429s counted since the last call,
  -- ARGV[9]: answers to log
  local totals = count_answers(ARGV[7], ARGV[8])
  log_answers(ARGV[9])
  local held = redis.call('HGET', pace, 'token') or ''
  if held == ARGV[3] then
    redis.call('HSET', pace, 'token', ARGV[4], 'at', tostring(now + tonumber(ARGV[5])), 'values', ARGV[6])
  end
  redis.call('EXPIRE', pace, ttl)
  local st = state()
  return {st[1], st[2], st[3], totals[1], totals[2]}
end
return redis.error_reply('unknown operation ' .. tostring(op))
""".replace("LOG_ANSWERS", str(HISTORY_ANSWERS))

# The pause as the reply to this thread's (or this task's) last slot taken read it, when that slot was due
# at once, with the store's round trips begun and failed when that one began. See
# RedisPaceStore.paused_until.
_DUE_AT_ONCE: ContextVar[tuple[weakref.ref[RedisPaceStore], tuple[int, int], float] | None] = ContextVar(
    "gooten_pace_due_at_once", default=None
)


def pace_key(recipe_id: str) -> str:
    """The Redis key of an account's pace: a hash of the Recipe ID, never the Recipe ID itself."""
    digest = hashlib.sha256(b"gooten-pace\0" + recipe_id.strip().encode("utf-8")).hexdigest()
    return KEY_PREFIX + "{" + digest + "}"


class RedisPaceStore:
    """A :class:`~gooten_provider.client.pacer.PaceStore` in Redis for one account (thread-safe).

    Each call that counts (a slot taken, :meth:`sync`, :meth:`answers`, a publication) carries the answers
    counted here since the last one and brings back the account's counts and the published state, so
    :meth:`counts`, :meth:`shared_state` and :meth:`started` answer from the last round trip. A slot's
    reply carries the pause too: :meth:`paused_until` answers from it when the slot was due at once (see
    there). A paced request thus costs two round trips when its slot is due at once (the slot; the
    answer's count, which the pacer sends at once with :meth:`sync`), three when it waited for its slot
    (the pause read again after the wait); a 429 adds its :meth:`pause` and its publication, and one that
    found the bucket empty again after a pause one more, the account's answers read (:meth:`answers`).

    :param client: a ``redis.Redis``; :meth:`connect` builds one with short timeouts and no retries of its
        own (an unreachable Redis must cost a request milliseconds, not seconds).
    :param recipe_id: the account's Recipe ID (only its hash is used).
    :param description: where the pace is kept, for log lines (no password in it).
    :param clock: the clock of the pacer using this store (seconds that never go backwards).
    """

    shared = True

    def __init__(
        self,
        client: redis.Redis,
        recipe_id: str,
        *,
        description: str = "Redis",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._clock = clock
        self.key = pace_key(recipe_id)
        self.description = description
        self._script = client.register_script(_SCRIPT)
        self._lock = threading.Lock()
        self._unsent_accepted = 0
        self._unsent_refused = 0
        self._unsent_answers: list[Answer] = []
        self._counts = (0, 0)  # the account's, as of the last slot taken
        self._in_flight = (0, 0)  # counts on their way to Redis
        self._started: float | None = None
        self._state: PaceState | None = None
        self._trips = 0  # round trips begun, by every thread
        self._failures = 0  # of them, those that failed

    @classmethod
    def connect(
        cls,
        recipe_id: str,
        *,
        host: str,
        port: int = 6379,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        ssl: bool = False,
        ssl_ca_certs: str | None = None,
        timeout: float = REDIS_TIMEOUT_SECONDS,
    ) -> RedisPaceStore:
        """The pace of ``recipe_id`` in the Redis at ``host:port`` (no connection is opened yet)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis(
            host=host,
            port=port,
            username=username or None,
            password=password or None,
            db=db,
            ssl=ssl,
            ssl_ca_certs=ssl_ca_certs,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        scheme = "rediss" if ssl else "redis"
        return cls(client, recipe_id, description=f"{scheme}://{host}:{port}/{db}")

    def _run(self, *args: Any) -> tuple[Any, float, tuple[int, int]]:
        """Run one operation (a round trip).

        Returns its reply, this clock's time when it came, and the round trips begun (this one the last)
        and failed when it began.
        """
        import redis

        with self._lock:
            self._trips += 1
            trip = (self._trips, self._failures)
        try:
            reply = self._script(
                keys=[self.key, self.key + ":answers"], args=[args[0], STATE_TTL_SECONDS, *args[1:]]
            )
        except redis.RedisError as exc:  # refused, timed out, a wrong password, a script error
            self._failed()
            raise PaceStoreUnavailable(type(exc).__name__) from exc
        return reply, self._clock(), trip

    def _failed(self) -> None:
        with self._lock:
            self._failures += 1

    def _send_counts(self, op: str, *args: Any) -> tuple[Any, float, tuple[int, int]]:
        """Run ``op`` with the answers counted since the last call; keep them for the next if it fails."""
        with self._lock:
            accepted, refused = self._unsent_accepted, self._unsent_refused
            answers, self._unsent_answers = self._unsent_answers, []
            self._unsent_accepted = self._unsent_refused = 0
            self._in_flight = (self._in_flight[0] + accepted, self._in_flight[1] + refused)
        local = self._clock()
        logged = ",".join(f"{ticket - local:.6f}:{kind}" for ticket, kind in answers)
        try:
            return self._run(op, *args, accepted, refused, logged)
        except PaceStoreUnavailable:
            with self._lock:
                self._unsent_accepted += accepted
                self._unsent_refused += refused
                self._unsent_answers[:0] = answers
            raise
        finally:
            with self._lock:
                self._in_flight = (self._in_flight[0] - accepted, self._in_flight[1] - refused)

    def take_slot(self, now: float, interval: float) -> float:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.take_slot`."""
        return self.take_slot_within(now, interval, _NO_HORIZON)[0]

    def take_slot_within(self, now: float, interval: float, horizon: float) -> tuple[float, bool]:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.take_slot_within`."""
        _DUE_AT_ONCE.set(None)
        reply, local, trip = self._send_counts("take", repr(interval), repr(min(horizon, _NO_HORIZON)))
        slot, taken, started, paused, *state_and_counts = (item.decode() for item in reply)
        with self._lock:
            self._started = local + float(started)
        self._keep(state_and_counts, local)
        if taken == "1" and float(slot) <= 0:  # due at once: its confirmation needs no second look
            _DUE_AT_ONCE.set((weakref.ref(self), trip, local + float(paused)))
        return local + float(slot), taken == "1"

    def _keep(self, reply: list[str], local: float) -> None:
        """Keep the state and the counts of a reply (``token, at, values, accepted, refused``)."""
        token, at, values, accepted, refused = reply
        with self._lock:
            self._counts = (int(accepted), int(refused))
            if token and (self._state is None or self._state.token != token):
                self._state = PaceState(token, local + float(at), json.loads(values))

    def sync(self) -> None:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.sync` (a round trip)."""
        reply, local, _ = self._send_counts("sync")
        self._keep([item.decode() for item in reply], local)

    def pause(self, until: float) -> None:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.pause`."""
        self._run("pause", repr(max(0.0, until - self._clock())))

    def paused_until(self) -> float:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.paused_until` (a round trip, but see below).

        Asked first after this thread (or task) took a slot that was due at once, with no round trip of
        this client begun since nor failed since that one began, it answers with the pause that slot's
        reply read: that is the pacer's confirmation of a slot it did not wait for
        (:meth:`~gooten_provider.client.pacer.Pacer.confirm`), a round trip later, and a second round trip
        would answer it no better. A pause this client set since began a round trip (so Redis is asked);
        one another client set in that round trip's time could as well have come just after a second one.
        A failure may have sent the calls in between to the fallback's own store (then this one's answer
        is old). Answered so once: a later call asks Redis.
        """
        due = _DUE_AT_ONCE.get()
        if due is not None and due[0]() is self:
            _DUE_AT_ONCE.set(None)
            with self._lock:
                if (self._trips, self._failures) == due[1]:
                    return due[2]
        reply, local, _ = self._run("paused")
        return local + float(reply)

    def note_accepted(self, now: float) -> None:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.note_accepted` (sent with the next call)."""
        with self._lock:
            self._unsent_accepted += 1

    def note_refused(self, now: float) -> None:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.note_refused` (sent with the next slot)."""
        with self._lock:
            self._unsent_refused += 1

    def log_answer(self, ticket: float, kind: int) -> None:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.log_answer` (sent with the next call)."""
        with self._lock:
            self._unsent_answers.append((ticket, kind))
            del self._unsent_answers[:-HISTORY_ANSWERS]

    def answers(self) -> list[Answer]:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.answers` (a round trip).

        It does what :meth:`sync` does, then reads the account's log, this client's answers not sent yet
        included: one script run.
        """
        reply, local, _ = self._send_counts("answers", repr(HISTORY_SECONDS))
        items = [item.decode() for item in reply]
        synced, logged = items[:_SYNC_REPLY_ITEMS], items[_SYNC_REPLY_ITEMS:]
        self._keep(synced, local)
        pairs = zip(logged[::2], logged[1::2], strict=True)
        return sorted((local + float(offset), int(kind)) for offset, kind in pairs)  # logged as they came

    def counts(self) -> tuple[int, int]:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.counts` (as of the last slot taken)."""
        with self._lock:
            return (
                self._counts[0] + self._unsent_accepted + self._in_flight[0],
                self._counts[1] + self._unsent_refused + self._in_flight[1],
            )

    def started(self) -> float:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.started`."""
        with self._lock:
            if self._started is not None:
                return self._started
        reply, local, _ = self._run("started")
        with self._lock:
            self._started = local + float(reply)
            return self._started

    def shared_state(self) -> PaceState | None:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.shared_state` (as of the last slot taken)."""
        with self._lock:
            return self._state

    def publish_state(self, state: PaceState, replaces: str | None) -> PaceState:
        """See :meth:`~gooten_provider.client.pacer.PaceStore.publish_state`."""
        offset = state.at - self._clock()
        reply, local, _ = self._send_counts(
            "publish", replaces or "", state.token, repr(offset), json.dumps(dict(state.values))
        )
        self._keep([item.decode() for item in reply], local)
        with self._lock:
            held = self._state
        if held is None:  # the script always answers a publication with the state it holds
            self._failed()
            raise PaceStoreUnavailable("Redis answered a publication with no state")
        return held

    def close(self) -> None:
        """Close the Redis client's connections."""
        self._client.close()
