"""Redis backend: one Redis Stream per queue, read through a consumer group.

A producer in any language enqueues with one command::

    XADD octobot:emails * body '{"task":"emails.send","args":["a@b.c"]}'

Keys for queue ``q`` (the braces below are placeholders, not cluster hash tags):

- ``octobot:{q}`` — the stream; each entry has one field, ``body``, the JSON envelope.
  Consumer group ``octobot`` reads it. Acked entries are deleted, so the stream
  holds only waiting and in-flight messages.
- ``octobot:{q}:delayed`` — sorted set of retries waiting for their backoff,
  scored by the time they become due.
- ``octobot:{q}:dead`` — stream of dead letters, one field ``record``.

A consumer that dies leaves its entries in the group's pending list; any other
consumer claims them with XAUTOCLAIM once they are ``visibility_timeout`` old.
"""

from __future__ import annotations

import functools
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from octobot.backends.base import Backend, BrokerUnavailable, DeadLetter, Delivery, decode_dead

GROUP = "octobot"
PROMOTE_EVERY = 0.05
_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)
_STREAM_ID = re.compile(r"\d+-\d+")

# Moves due retries from the delayed set to the stream, atomically, so that two
# consumers running it at once never publish the same retry twice.
# KEYS: delayed set, stream. ARGV: now. Members are "<uuid>:<body>".
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'body', string.sub(member, string.find(member, ':', 1, true) + 1))
end
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return #due
"""

# Republishes dead letters; only the caller whose XDEL removed an entry
# publishes it, so two operators retrying at once cause no duplicates.
# KEYS: dead stream, stream. ARGV: id1, body1, id2, body2, ...
_RESURRECT = """
local moved = 0
for i = 1, #ARGV, 2 do
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[2], '*', 'body', ARGV[i + 1])
    moved = moved + 1
  end
end
return moved
"""

P = ParamSpec("P")
R = TypeVar("R")


def _translating(method: Callable[Concatenate[RedisBackend, P], R]) -> Callable[Concatenate[RedisBackend, P], R]:
    """Turn connection failures into BrokerUnavailable, so callers back off instead of crashing."""

    @functools.wraps(method)
    def wrapper(self: RedisBackend, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except _UNAVAILABLE as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise BrokerUnavailable(f"redis {self._where} unreachable: {reason}") from exc

    return wrapper


def _is_nogroup(exc: redis.ResponseError) -> bool:
    # Pipelines prefix the server's error with "Command # n (...) of pipeline caused error:".
    return "NOGROUP" in str(exc)


def _body(fields: dict[bytes, bytes]) -> bytes:
    # An entry without "body" came from a foreign producer; hand over all its
    # fields as JSON so the dead letter it becomes shows what was sent.
    body = fields.get(b"body")
    if body is not None:
        return body
    return json.dumps({k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}).encode()


def _dead(entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    # An entry another client added has no "record": all its fields are shown.
    record = fields.get(b"record")
    return decode_dead(entry_id.decode(), _body(fields) if record is None else record)


class RedisBackend(Backend):
    """A queue stored in a Redis Stream, consumed at least once through a consumer group."""

    schemes = ("redis", "rediss")
    # Redis numbers its databases with a C int (16 of them unless redis.conf says more).
    MAX_DB = 2**31 - 1

    @classmethod
    def normalize_url(cls, url: str) -> str:
        url = super().normalize_url(url)
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise ValueError("Redis URL: the port is not a number between 0 and 65535") from None
        if port == 0:
            raise ValueError("Redis URL: port 0 is not a port a server listens on")
        db = parts.path.lstrip("/")
        if db and not (db.isdigit() and int(db) <= cls.MAX_DB):
            raise ValueError(f"Redis URL: the database must be a number between 0 and {cls.MAX_DB}, "
                             f"got {db[:20]!r}")
        return url

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key = f"octobot:{self.queue}"
        self._delayed_key = f"{self._key}:delayed"
        self._dead_key = f"{self._key}:dead"
        # URL query options (e.g. ?socket_timeout=30) override these defaults.
        self._client = redis.Redis.from_url(
            self.url, socket_timeout=10, socket_connect_timeout=2, health_check_interval=15,
            # The consumer has its own backoff; one quick retry covers a pooled
            # connection the server closed, more would only delay the error.
            retry=Retry(NoBackoff(), 1))
        conn = self._client.connection_pool.connection_kwargs
        self._where = conn.get("path") or f"{conn.get('host', '127.0.0.1')}:{conn.get('port', 6379)}"
        # A blocking read must return before the socket times out.
        self._max_block = max(0.1, (conn.get("socket_timeout") or 10) / 2)
        self._promote = self._client.register_script(_PROMOTE)
        self._resurrect = self._client.register_script(_RESURRECT)
        # Reclaim state, touched only by fetch. Races between threads fetching
        # at once are harmless: at worst one extra XAUTOCLAIM.
        self._next_reclaim = 0.0
        self._reclaim_from = "0-0"
        self._next_promote = 0.0

    def _create_group(self) -> None:
        try:
            self._client.xgroup_create(self._key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _with_group(self, call: Callable[[], R]) -> R:
        """Run ``call``; if the group is missing (first use, broker restarted), create it and run again."""
        try:
            return call()
        except redis.ResponseError as exc:
            if not _is_nogroup(exc):
                raise
        self._create_group()
        return call()

    def _forget(self, pipe: redis.client.Pipeline, deliveries: Sequence[Delivery]) -> None:
        """Queue XACK + XDEL of these deliveries on ``pipe``."""
        ids = [d.receipt for d in deliveries]
        pipe.xack(self._key, GROUP, *ids)
        pipe.xdel(self._key, *ids)

    # -- producer ---------------------------------------------------------

    @_translating
    def _publish(self, bodies: Sequence[bytes]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for body in bodies:
            pipe.xadd(self._key, {"body": body})
        pipe.execute()

    # -- consumer ---------------------------------------------------------

    @_translating
    def _fetch(self, max_count: int, timeout: float) -> list[Delivery]:
        return self._read((), max_count, timeout)

    @_translating
    def _ack_and_fetch(self, acks: Sequence[Delivery], max_count: int, timeout: float) -> list[Delivery]:
        return self._read(acks, max_count, timeout)

    def _read(self, acks: Sequence[Delivery], max_count: int, timeout: float) -> list[Delivery]:
        """XACK + XDEL of ``acks`` and XREADGROUP in one pipeline: one round trip per batch."""
        now = time.monotonic()
        if now >= self._next_promote:
            # Due retries move to the stream; checking every few ms is precise
            # enough for backoffs and saves a round trip on most fetches.
            self._next_promote = now + PROMOTE_EVERY
            self._promote(keys=[self._delayed_key, self._key], args=[time.time()])
        deliveries = self._with_group(lambda: self._reclaim(max_count))
        want = max_count - len(deliveries)
        # BLOCK 0 would wait forever: leave it out for a non-blocking read.
        block = None if deliveries or timeout <= 0 else max(1, int(min(timeout, self._max_block) * 1000))

        def read() -> Any:
            pipe = self._client.pipeline(transaction=False)
            if acks:
                self._forget(pipe, acks)
            if want > 0:
                pipe.xreadgroup(GROUP, self.consumer_name, {self._key: ">"}, count=want, block=block)
            replies = pipe.execute()
            return replies[-1] if want > 0 else None

        # Re-running after NOGROUP is safe: XACK and XDEL are idempotent.
        for _stream, entries in self._with_group(read) or []:
            deliveries += [Delivery(body=_body(fields), receipt=entry_id) for entry_id, fields in entries]
        return deliveries

    def _reclaim(self, max_count: int) -> list[Delivery]:
        """Take over entries another consumer fetched but did not ack within the visibility timeout."""
        now = time.monotonic()
        if now < self._next_reclaim:
            return []
        cursor, claimed, *_deleted = self._client.xautoclaim(
            self._key, GROUP, self.consumer_name, int(self.visibility_timeout * 1000),
            start_id=self._reclaim_from, count=max_count)
        self._reclaim_from = cursor
        # A cursor other than 0-0 means more idle entries may follow: look again next fetch.
        self._next_reclaim = now if cursor != b"0-0" else now + self.visibility_timeout / 4
        # Redis 6.2 returns deleted entries as nil in place.
        return [Delivery(body=_body(fields), receipt=entry_id) for entry_id, fields in claimed
                if entry_id is not None]

    @_translating
    def _ack(self, deliveries: Sequence[Delivery]) -> None:
        # No MULTI: XACK and XDEL are idempotent, so a half-applied ack is re-done harmlessly.
        pipe = self._client.pipeline(transaction=False)
        self._forget(pipe, deliveries)
        pipe.execute()

    @_translating
    def _release(self, deliveries: Sequence[Delivery]) -> None:
        pipe = self._client.pipeline(transaction=True)
        for d in deliveries:
            pipe.xadd(self._key, {"body": d.body})
        self._forget(pipe, deliveries)
        pipe.execute()

    @_translating
    def _retry(self, delivery: Delivery, body: bytes, delay: float) -> None:
        # The uuid prefix keeps two retries with equal bodies distinct in the set.
        member = uuid.uuid4().hex.encode() + b":" + body
        pipe = self._client.pipeline(transaction=True)
        pipe.zadd(self._delayed_key, {member: time.time() + delay})
        self._forget(pipe, [delivery])
        pipe.execute()

    @_translating
    def _dead_letter(self, delivery: Delivery, record: bytes) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.xadd(self._dead_key, {"record": record})
        self._forget(pipe, [delivery])
        pipe.execute()

    @_translating
    def _touch(self, deliveries: Sequence[Delivery]) -> None:
        ids = [d.receipt for d in deliveries]
        self._with_group(lambda: self._client.xclaim(
            self._key, GROUP, self.consumer_name, 0, ids, justid=True))

    @staticmethod
    def _waiting(length: int, groups: list[dict[str, Any]] | Exception) -> int:
        """Undelivered entries, from XLEN and XINFO GROUPS of the stream."""
        if isinstance(groups, Exception):  # no stream
            return 0
        group = next((g for g in groups if g["name"] == GROUP.encode()), None)
        if group is None:  # nothing read yet: every entry waits
            return length
        # Redis 7 reports lag unless deletions make it unknown; acked entries
        # are deleted, so the stream otherwise holds waiting + pending ones.
        lag = group.get("lag")
        return lag if lag is not None else max(0, length - group["pending"])

    @_translating
    def _depth(self) -> int:
        pipe = self._client.pipeline(transaction=True)
        pipe.xlen(self._key)
        pipe.xinfo_groups(self._key)
        length, groups = pipe.execute(raise_on_error=False)
        return self._waiting(length, groups)

    @_translating
    def _purge(self) -> int:
        """Drop waiting and delayed messages; return how many.

        The stream is deleted whole, so in-flight messages lose their pending
        entry too: their acks become no-ops and they are not redelivered if
        their consumer dies.
        """
        pipe = self._client.pipeline(transaction=True)
        pipe.xlen(self._key)
        pipe.xinfo_groups(self._key)
        pipe.zcard(self._delayed_key)
        pipe.delete(self._key, self._delayed_key)
        pipe.xgroup_create(self._key, GROUP, id="0", mkstream=True)
        length, groups, delayed, *_ = pipe.execute(raise_on_error=False)
        return self._waiting(length, groups) + delayed

    # -- dead letters -----------------------------------------------------

    @_translating
    def _dead_list(self, limit: int) -> list[DeadLetter]:
        entries = self._client.xrange(self._dead_key, count=limit)
        return [_dead(entry_id, fields) for entry_id, fields in entries]

    @_translating
    def _dead_retry(self, ids: Sequence[str] | None) -> int:
        if ids is None:
            return self._dead_retry_all()
        bad = [i for i in ids if not _STREAM_ID.fullmatch(i)]
        if bad:
            raise ValueError(f"not dead-letter ids: {', '.join(bad)}")
        pipe = self._client.pipeline(transaction=False)
        for dead_id in ids:
            pipe.xrange(self._dead_key, dead_id, dead_id)
        return self._republish([entry for found in pipe.execute() for entry in found])

    def _dead_retry_all(self) -> int:
        # Stop at the newest entry seen now, so letters that die again while
        # this runs are not retried in an endless loop.
        newest = self._client.xrevrange(self._dead_key, count=1)
        if not newest:
            return 0
        moved, start = 0, b"-"
        while page := self._client.xrange(self._dead_key, min=start, max=newest[0][0], count=500):
            moved += self._republish(page)
            start = b"(" + page[-1][0]  # after the page: records not ours stay where they are
        return moved

    def _republish(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        if not entries:
            return 0
        args: list[bytes] = []
        for entry_id, fields in entries:
            letter = _dead(entry_id, fields)
            if letter.retriable:
                args += [entry_id, letter.revived()]
        return int(self._resurrect(keys=[self._dead_key, self._key], args=args)) if args else 0

    @_translating
    def _dead_purge(self) -> int:
        pipe = self._client.pipeline(transaction=True)
        pipe.xlen(self._dead_key)
        pipe.delete(self._dead_key)
        count, _ = pipe.execute()
        return int(count)

    def close(self) -> None:
        self._client.close()
