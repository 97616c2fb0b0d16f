"""One conformance suite run against every backend: real Redis at 127.0.0.1:6379 and a SQLite file."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import greenstalk
import pika
import pytest
import redis

import octobot
from octobot.backends import Backend, BrokerUnavailable, Delivery, open_backend
from octobot.backends import memory
from octobot.backends.base import UNREADABLE
from octobot.backends.sqlite import SqliteBackend
from octobot.envelope import Envelope

from support.brokers import REDIS_URL, cleanup, queue_url


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason=f"no Redis at {REDIS_URL}")


@dataclass
class Broker:
    """One test queue on one backend; ``open`` gives consumers on it."""

    kind: str
    url: str
    queue: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:12]}")
    opened: list[Backend] = field(default_factory=list)

    def open(self, consumer_name: str = "c1", visibility_timeout: float = 30.0) -> Backend:
        backend = open_backend(self.kind, self.queue, self.url, consumer_name=consumer_name,
                               visibility_timeout=visibility_timeout)
        self.opened.append(backend)
        return backend

    def close(self) -> None:
        for backend in self.opened:
            backend.close()
        cleanup(self.kind, self.url, self.queue)


@pytest.fixture(params=[pytest.param("redis", marks=needs_redis), "sqlite", "amqp", "beanstalk", "memory"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    b = Broker(request.param, queue_url(request.param, tmp_path))
    yield b
    b.close()


@pytest.fixture
def redis_broker() -> Iterator[Broker]:
    b = Broker("redis", REDIS_URL)
    yield b
    b.close()


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.body for d in deliveries]


def fetch_all(backend: Backend, timeout: float = 0.5) -> list[Delivery]:
    """Everything fetchable now (fetch may return fewer than asked per call)."""
    got: list[Delivery] = []
    while batch := backend.fetch(100, timeout if not got else 0):
        got += batch
    return got


def test_fifo_and_ack(broker: Broker) -> None:
    q = broker.open()
    sent = [f"m{i}".encode() for i in range(5)]
    q.publish(sent[:2])
    q.publish(sent[2:])
    got = q.fetch(10, 1.0)
    assert bodies(got) == sent
    q.ack(got)
    assert q.fetch(10, 0.1) == []
    assert q.depth() == 0


def test_max_count_and_empty_timeout(broker: Broker) -> None:
    q = broker.open()
    q.publish([b"a", b"b", b"c"])
    assert bodies(q.fetch(2, 1.0)) == [b"a", b"b"]
    assert bodies(q.fetch(5, 1.0)) == [b"c"]
    start = time.monotonic()
    assert q.fetch(5, 0.3) == []
    assert 0.25 <= time.monotonic() - start < 2.0


def test_release_makes_messages_fetchable(broker: Broker) -> None:
    q = broker.open()
    q.publish([b"a", b"b"])
    got = q.fetch(10, 1.0)
    assert q.depth() == 0
    q.release(got)
    assert q.depth() == 2
    other = broker.open("c2")
    assert sorted(bodies(fetch_all(other))) == [b"a", b"b"]


def test_unacked_message_goes_to_another_consumer(broker: Broker) -> None:
    dying, other = broker.open("dying", 0.5), broker.open("other", 0.5)
    dying.publish([b"job"])
    assert bodies(dying.fetch(10, 1.0)) == [b"job"]
    assert other.fetch(10, 0.1) == []
    # The consumer dies without acking: its connection goes, and after the
    # visibility timeout (Redis, SQLite, beanstalk TTR) or at once (AMQP)
    # another consumer gets the message.
    dying.close()
    time.sleep(0.6)
    got = other.fetch(10, 1.0)
    assert bodies(got) == [b"job"]
    other.ack(got)
    assert other.fetch(10, 0.1) == []


def test_touch_keeps_message_owned(broker: Broker) -> None:
    slow, other = broker.open("slow", 0.5), broker.open("other", 0.5)
    slow.publish([b"job"])
    got = slow.fetch(10, 1.0)
    for _ in range(4):  # 1 s in all, twice the visibility timeout
        time.sleep(0.25)
        slow.touch(got)
        assert other.fetch(10, 0) == []
    slow.ack(got)


def test_retry_is_delayed(broker: Broker) -> None:
    q = broker.open()
    q.publish([b"attempt-0"])
    [d] = q.fetch(10, 1.0)
    q.retry(d, b"attempt-1", 0.5)
    assert q.fetch(10, 0.1) == []
    assert q.depth() == 0  # delayed messages are not waiting yet
    time.sleep(0.5)
    got = q.fetch(10, 1.0)
    assert bodies(got) == [b"attempt-1"]
    q.ack(got)


def test_dead_letters(broker: Broker) -> None:
    q = broker.open()
    q.publish([b"first", b"second", b"third"])
    first, second, third = q.fetch(10, 1.0)
    q.dead_letter(first, "not JSON", "Expecting value")
    [dead] = q.dead_list()
    assert (dead.body, dead.reason, dead.error) == (b"first", "not JSON", "Expecting value")
    assert dead.failed_at > 0
    assert q.fetch(10, 0.1) == []

    assert q.dead_retry([dead.id]) == 1
    assert q.dead_retry([dead.id]) == 0  # already moved
    assert q.dead_list() == []
    again = q.fetch(10, 1.0)
    assert bodies(again) == [b"first"]

    q.dead_letter(second, "boom")
    q.dead_letter(third, "boom")
    assert [d.body for d in q.dead_list(limit=1)] == [b"second"]  # oldest first
    assert q.dead_retry() == 2
    assert sorted(bodies(fetch_all(q))) == [b"second", b"third"]

    q.dead_letter(again[0], "boom")
    assert q.dead_purge() == 1
    assert q.dead_list() == []
    with pytest.raises(ValueError):
        q.dead_retry(["not-an-id"])


def _foreign_dead(broker: Broker, record: bytes) -> None:
    """A record another client put where the queue's dead letters live."""
    if broker.kind == "redis":
        redis.Redis.from_url(broker.url).xadd(f"octobot:{broker.queue}:dead", {"record": record})
        redis.Redis.from_url(broker.url).xadd(f"octobot:{broker.queue}:dead", {"someone": "else"})
    elif broker.kind == "sqlite":
        with sqlite3.connect(broker.url.removeprefix("sqlite:///")) as db:
            db.execute("INSERT INTO dead (queue, record, at) VALUES (?, ?, 0)", (broker.queue, record))
            db.execute("INSERT INTO dead (queue, record, at) VALUES (?, NULL, 0)", (broker.queue,))
    elif broker.kind == "amqp":
        with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
            conn.channel().basic_publish("", f"{broker.queue}.dead", record)
    elif broker.kind == "memory":
        memory.broker_at(broker.url).queues[broker.queue].dead.append((uuid.uuid4().hex, record, 0.0))
    else:
        host, port = broker.url.removeprefix("beanstalk://").split(":")
        with greenstalk.Client((host, int(port)), use=f"{broker.queue}.dead", watch=f"{broker.queue}.dead") as c:
            c.put(record)
            c.bury(c.reserve(timeout=5))


def test_records_that_are_not_ours_are_listed_unreadable_and_kept(broker: Broker) -> None:
    """One foreign record used to break listing and retrying every dead letter
    of the queue (redis: KeyError; sqlite and beanstalk: an invalid argument).
    Not being a task message either, it is never retried."""
    q = broker.open()
    q.publish([b"ours"])
    [ours] = q.fetch(1, 1.0)
    q.dead_letter(ours, "boom")
    _foreign_dead(broker, b"not a dead letter at all")
    listed = q.dead_list()
    foreign = [d for d in listed if not d.readable]
    assert [d.body for d in listed if d.readable] == [b"ours"]
    assert foreign and {d.reason for d in foreign} == {UNREADABLE}
    assert b"not a dead letter at all" in {d.body for d in foreign}
    assert q.dead_retry() == 1
    assert bodies(fetch_all(q)) == [b"ours"]
    assert sorted(d.body for d in q.dead_list()) == sorted(d.body for d in foreign)  # kept, untouched
    assert q.dead_retry([d.id for d in foreign if d.id]) == 0


def test_depth_and_purge(broker: Broker) -> None:
    q = broker.open()
    assert q.depth() == 0
    q.publish([b"a", b"b", b"c"])
    assert q.depth() == 3
    q.fetch(1, 1.0)
    assert q.depth() == 2
    assert q.purge() == 2
    assert q.depth() == 0
    assert q.fetch(10, 0.1) == []


def test_client_round_trip(broker: Broker) -> None:
    with octobot.Client(broker.url) as client:
        assert client.backend_name == broker.kind
        one = client.enqueue(broker.queue, "emails.send", args=["a@b.c"], kwargs={"urgent": True}, max_retries=2)
        many = client.enqueue_many(broker.queue, [Envelope.new("emails.send", args=[i]) for i in range(3)])
    got = [Envelope.parse(d.body) for d in fetch_all(broker.open())]
    assert [e.id for e in got] == [one, *many]
    assert (got[0].task, got[0].args, got[0].kwargs, got[0].max_retries) == ("emails.send", ["a@b.c"],
                                                                             {"urgent": True}, 2)
    assert [e.args for e in got[1:]] == [[0], [1], [2]]


def test_concurrent_consumers_get_each_message_once(broker: Broker) -> None:
    q = broker.open()
    sent = [str(i).encode() for i in range(2000)]
    for start in range(0, len(sent), 500):
        q.publish(sent[start:start + 500])
    seen: list[bytes] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            # Everything was published first, so an empty fetch means drained.
            while batch := q.fetch(50, 0.2):
                q.ack(batch)
                with lock:
                    seen.extend(bodies(batch))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sorted(seen, key=int) == sent
    assert q.depth() == 0


def test_sqlite_normalize_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert SqliteBackend.normalize_url("sqlite:///q.db") == f"sqlite:///{tmp_path}/q.db"
    assert SqliteBackend.normalize_url("sqlite:////var/q.db") == "sqlite:////var/q.db"
    for bad in ("sqlite://", "sqlite:///", "sqlite:///:memory:", "redis://127.0.0.1/0"):
        with pytest.raises(ValueError):
            SqliteBackend.normalize_url(bad)


@needs_redis
def test_redis_one_command_producer(redis_broker: Broker) -> None:
    broker = redis_broker
    q = broker.open()
    q.fetch(1, 0)  # the group exists before the producer writes, as in production
    body = json.dumps({"task": "emails.send", "args": ["a@b.c"]}).encode()
    redis.Redis.from_url(REDIS_URL).xadd("octobot:" + broker.queue, {"body": body})
    [d] = q.fetch(10, 1.0)
    assert Envelope.parse(d.body).args == ["a@b.c"]


@needs_redis
def test_redis_recovers_when_stream_and_group_vanish(redis_broker: Broker) -> None:
    broker = redis_broker
    q = broker.open()
    q.publish([b"before"])
    q.ack(q.fetch(10, 1.0))
    redis.Redis.from_url(REDIS_URL).delete("octobot:" + broker.queue)  # as after a restart without persistence
    q.publish([b"after"])
    assert bodies(q.fetch(10, 1.0)) == [b"after"]


@pytest.mark.parametrize("call", [lambda q: q.fetch(1, 0.1), lambda q: q.publish([b"x"]), lambda q: q.depth()])
def test_unreachable_redis_raises_broker_unavailable(call: Callable[[Backend], object]) -> None:
    q = open_backend("redis", "nowhere", "redis://127.0.0.1:1/0")
    with pytest.raises(BrokerUnavailable, match=r"redis 127\.0\.0\.1:1 unreachable"):
        call(q)
    q.close()
