"""AMQP-specific behaviour of the RabbitMQ backend, against the real broker at 127.0.0.1:5672.

The shared contract is tested in test_backends.py; this file covers what only
AMQP has: queue arguments, prefetch, delay queues, threads sharing one
backend, and connections that break.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pika
import pika.exceptions
import pytest

from octobot.backends import Backend, BrokerUnavailable, Delivery, amqp_links
from octobot.backends.amqp import AmqpBackend, delay_bucket, queue_arguments
from octobot.backends.base import UNREADABLE

R = TypeVar("R")

URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
# Port 1 refuses at once; one attempt, short timeouts, so the test does not wait.
DOWN_URL = "amqp://guest:guest@127.0.0.1:1/%2F?connection_attempts=1&socket_timeout=1"


def _rabbit_up() -> bool:
    try:
        pika.BlockingConnection(pika.URLParameters(URL)).close()
        return True
    except pika.exceptions.AMQPError:
        return False


pytestmark = pytest.mark.skipif(not _rabbit_up(), reason=f"no RabbitMQ at {URL}")


@dataclass
class Rabbit:
    """A unique queue name, the backends opened on it, and a raw channel for looking behind them."""

    channel: pika.adapters.blocking_connection.BlockingChannel
    queue: str = field(default_factory=lambda: f"test-amqp-{uuid.uuid4().hex[:12]}")
    # Queues to delete afterwards besides <queue> and <queue>.dead (e.g. delay queues).
    extra: list[str] = field(default_factory=list)
    opened: list[Backend] = field(default_factory=list)

    def open(self, **kwargs: object) -> AmqpBackend:
        backend = AmqpBackend(self.queue, URL, **kwargs)
        self.opened.append(backend)
        return backend


@pytest.fixture
def rabbit() -> Iterator[Rabbit]:
    with pika.BlockingConnection(pika.URLParameters(URL)) as conn:
        r = Rabbit(conn.channel())
        yield r
        for backend in r.opened:
            backend.close()
        channel = conn.channel()  # the test's channel may have been closed by an error on purpose
        for name in (r.queue, f"{r.queue}.dead", *r.extra):
            channel.queue_delete(name)


def take_all(backend: Backend, first_wait: float = 1.0) -> list[Delivery]:
    """Everything the backend hands out now, without acking."""
    got: list[Delivery] = []
    while batch := backend.fetch(100, first_wait if not got else 0.3):
        got += batch
    return got


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.body for d in deliveries]


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def consumer_of(backend: AmqpBackend) -> amqp_links.Consumer:
    consumer = backend._consumers.current()
    assert consumer is not None
    return consumer


def close_from_broker(connection_name: str) -> None:
    """Close a client connection from RabbitMQ's side, as a broker restart or a load balancer would."""
    listing = subprocess.run(["rabbitmqctl", "list_connections", "pid", "client_properties", "-q",
                              "--no-table-headers"], capture_output=True, text=True, timeout=30, check=True).stdout
    [pid] = [line.split("\t")[0] for line in listing.splitlines() if f'"{connection_name}"' in line]
    subprocess.run(["rabbitmqctl", "close_connection", pid, "closed by test"], capture_output=True, timeout=30,
                   check=True)


def once_more(call: Callable[[], R]) -> R:
    """Call; after one BrokerUnavailable the next call must reconnect and succeed."""
    try:
        return call()
    except BrokerUnavailable:
        return call()


# -- queue arguments and URLs ---------------------------------------------------


def test_queue_arguments_come_from_x_options() -> None:
    options = {"x-max-priority": "10", "x-queue-type": "quorum", "x-single-active-consumer": "true",
               "x-overflow": "reject-publish", "visibility_timeout": "30"}
    assert queue_arguments(options) == {"x-max-priority": 10, "x-queue-type": "quorum",
                                        "x-single-active-consumer": True, "x-overflow": "reject-publish"}


def test_queue_arguments_reach_the_broker(rabbit: Rabbit) -> None:
    rabbit.open(options={"x-max-priority": "10", "x-max-length": "100"}).publish([b"x"])
    # Same arguments (as ints, the broker compares types): accepted.
    rabbit.channel.queue_declare(rabbit.queue, durable=True, arguments={"x-max-priority": 10, "x-max-length": 100})
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        rabbit.channel.queue_declare(rabbit.queue, durable=True, arguments={"x-max-priority": 5, "x-max-length": 100})
    assert err.value.reply_code == 406  # PRECONDITION_FAILED: inequivalent arg


def test_quorum_queue_round_trip(rabbit: Rabbit) -> None:
    q = rabbit.open(options={"x-queue-type": "quorum"})
    q.publish([b"a", b"b"])
    a, b = q.fetch(10, 1.0)
    q.ack([a])
    q.dead_letter(b, "boom")
    [dead] = q.dead_list()
    assert q.dead_retry([dead.id]) == 1
    assert bodies(q.fetch(10, 1.0)) == [b"b"]


def test_urls() -> None:
    assert AmqpBackend.normalize_url("amqps://u:p@rabbit.example:5671/%2F") == "amqps://u:p@rabbit.example:5671/%2F"
    for bad in ("amqp://h/?no_such_option=1", "amqp://h:port/", "redis://127.0.0.1:6379/0"):
        with pytest.raises(ValueError):
            AmqpBackend.normalize_url(bad)


def test_heartbeat_defaults_to_30s_unless_the_url_sets_it() -> None:
    assert amqp_links.parameters(URL, "n").heartbeat == 30
    assert amqp_links.parameters(URL + "?heartbeat=5", "n").heartbeat == 5


# -- prefetch ---------------------------------------------------------------------


def test_prefetch_is_respected(rabbit: Rabbit) -> None:
    q = rabbit.open(prefetch=3)
    q.publish([str(i).encode() for i in range(20)])
    first = q.fetch(10, 1.0)
    assert bodies(first) == [b"0", b"1", b"2"]
    assert q.fetch(10, 0.3) == []  # three unacked: the broker sends no more
    assert q.depth() == 17
    q.ack(first[:1])
    assert bodies(q.fetch(10, 1.0)) == [b"3"]


def test_set_prefetch_changes_it(rabbit: Rabbit) -> None:
    q = rabbit.open(prefetch=3)
    q.publish([str(i).encode() for i in range(30)])
    held = take_all(q)
    assert len(held) == 3
    q.set_prefetch(5)
    q.ack(held)
    held = take_all(q)
    assert len(held) == 5
    q.set_prefetch(2)
    q.ack(held)
    assert len(take_all(q)) == 2


def test_lower_prefetch_gives_the_buffer_back(rabbit: Rabbit) -> None:
    q = rabbit.open(prefetch=5)
    q.publish([str(i).encode() for i in range(10)])
    assert len(q.fetch(1, 1.0)) == 1  # four more wait in the consumer's buffer
    assert wait_until(lambda: q.depth() == 5, 2.0)
    q.set_prefetch(2)
    assert q.depth() == 9  # the buffered four are back in the queue for anyone


def test_unfetched_buffer_goes_back_when_nobody_fetches(rabbit: Rabbit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amqp_links, "IDLE_GIVE_BACK", 0.2)
    q = rabbit.open(prefetch=5)
    q.publish([b"first"])
    q.ack(q.fetch(5, 1.0))
    q.publish([b"a", b"b", b"c"])  # pushed into the buffer; nobody fetches them (e.g. a paused queue)
    assert wait_until(lambda: q.depth() == 3, 3.0)
    assert sorted(bodies(take_all(q))) == [b"a", b"b", b"c"]


# -- retries ------------------------------------------------------------------------


def test_delay_ladder() -> None:
    assert delay_bucket(0) == delay_bucket(-1) == 0
    assert delay_bucket(2.0) == 2048
    for seconds in (0.001, 0.3, 0.5, 1.5, 7.0, 600.0):
        ms = delay_bucket(seconds)
        assert seconds * 1000 <= ms <= seconds * 1000 * 1.19 + 1
    # Few rungs, so few delay queues: 1 ms .. 1 h fits in under a hundred.
    assert len({delay_bucket(ms / 1000) for ms in range(1, 3_600_000, 997)}) < 100


def test_retry_delays_are_kept(rabbit: Rabbit) -> None:
    rabbit.extra += [f"{rabbit.queue}.delay.{delay_bucket(s)}" for s in (0.3, 2.0)]
    q = rabbit.open()
    q.publish([b"short", b"long"])
    short, long = q.fetch(10, 1.0)
    short_at = time.monotonic()
    q.retry(short, b"short-1", 0.3)
    long_at = time.monotonic()
    q.retry(long, b"long-1", 2.0)
    assert q.depth() == 0
    [back] = q.fetch(10, 1.5)
    assert back.body == b"short-1"
    assert 0.3 <= time.monotonic() - short_at < 1.0
    q.ack([back])
    [back] = q.fetch(10, 3.0)
    assert back.body == b"long-1"
    assert 2.0 <= time.monotonic() - long_at < 3.0
    q.ack([back])


def test_retry_without_delay_goes_straight_back(rabbit: Rabbit) -> None:
    q = rabbit.open()
    q.publish([b"job"])
    [d] = q.fetch(10, 1.0)
    q.retry(d, b"job-1", 0)
    assert bodies(q.fetch(10, 1.0)) == [b"job-1"]


# -- threads ------------------------------------------------------------------------


def test_acks_from_four_threads_are_all_applied(rabbit: Rabbit) -> None:
    q = rabbit.open()
    sent = [str(i).encode() for i in range(2000)]
    q.publish(sent)
    got: list[Delivery] = []
    while len(got) < len(sent) and (batch := q.fetch(2000, 1.0)):
        got += batch
    assert sorted(bodies(got), key=int) == sent

    # Interleaved shares, so neighbouring tags are acked by different threads.
    def ack_one_by_one(share: list[Delivery]) -> None:
        for d in share:
            q.ack([d])

    threads = [threading.Thread(target=ack_one_by_one, args=(got[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    q.close()  # acks queued before close are sent before the connection closes

    other = rabbit.open()
    assert other.fetch(10, 0.5) == []
    assert other.depth() == 0


def test_publish_from_many_threads(rabbit: Rabbit) -> None:
    q = rabbit.open()
    errors: list[BaseException] = []

    def produce(thread: int) -> None:
        try:
            for batch in range(25):
                q.publish([f"{thread}:{batch}:{i}".encode() for i in range(4)])
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert q.depth() == 800
    got: list[list[str]] = []
    while batch := q.fetch(800, 1.0):
        q.ack(batch)
        got += [d.body.decode().split(":") for d in batch]
    assert len(got) == 800
    for thread in range(8):  # each thread's messages arrive in the order it published them
        mine = [(int(b), int(i)) for t, b, i in got if int(t) == thread]
        assert mine == sorted(mine) and len(mine) == 100


# -- dead letters -------------------------------------------------------------------


def test_dead_letter_ids_are_checkable(rabbit: Rabbit) -> None:
    q = rabbit.open()
    q.publish([b"job"])
    q.dead_letter(q.fetch(1, 1.0)[0], "boom")
    [dead] = q.dead_list()
    assert len(dead.id) == 32 and int(dead.id, 16) >= 0
    assert q.dead_retry([uuid.uuid4().hex]) == 0  # well formed, not there
    with pytest.raises(ValueError, match="not dead-letter ids"):
        q.dead_retry([dead.id, "12345"])
    assert q.dead_list() == [dead]  # listing twice consumes nothing


def test_foreign_dead_letters_are_listed_and_retried(rabbit: Rabbit) -> None:
    q = rabbit.open()
    q.depth()  # declares the queues
    rabbit.channel.basic_publish("", f"{rabbit.queue}.dead", b'{"task": "x"}')  # e.g. from a broker DLX policy
    [dead] = q.dead_list()
    assert (dead.body, dead.reason, dead.readable) == (b'{"task": "x"}', UNREADABLE, False)
    assert q.dead_retry() == 1
    [d] = q.fetch(10, 1.0)
    assert json.loads(d.body)["task"] == "x"


def test_listed_dead_letters_can_be_purged_at_once(rabbit: Rabbit) -> None:
    q = rabbit.open()
    q.publish([b"a", b"b"])
    for d in q.fetch(10, 1.0):
        q.dead_letter(d, "boom")
    assert len(q.dead_list()) == 2  # taken and put back...
    assert q.dead_purge() == 2  # ...and back before the purge


# -- broken connections ---------------------------------------------------------------


@pytest.mark.parametrize("call", [lambda q: q.fetch(1, 0.1), lambda q: q.publish([b"x"]), lambda q: q.depth(),
                                  lambda q: q.dead_list()])
def test_unreachable_broker_raises_broker_unavailable(call: Callable[[Backend], object]) -> None:
    q = AmqpBackend("nowhere", DOWN_URL)
    start = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=r"amqp 127\.0\.0\.1:1 unreachable: .*Connection refused"):
        call(q)
    assert time.monotonic() - start < 2.0
    q.close()


def test_cancelled_consumer_reconnects(rabbit: Rabbit) -> None:
    q = rabbit.open()
    assert q.fetch(1, 0.1) == []  # consuming now
    rabbit.channel.queue_delete(rabbit.queue)  # RabbitMQ cancels our consumer
    # The consumer notices and reconnects, declaring the queue again; otherwise
    # it would wait forever and the publish below would go nowhere.
    assert once_more(lambda: q.fetch(1, 0.5)) == []
    q.publish([b"job"])
    assert bodies(q.fetch(1, 1.0)) == [b"job"]


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
def test_lost_connections_are_replaced(rabbit: Rabbit) -> None:
    q = rabbit.open()
    q.publish([b"job"])
    [d] = q.fetch(10, 1.0)
    close_from_broker(f"octobot octobot {rabbit.queue} consumer")
    close_from_broker(f"octobot octobot {rabbit.queue} publisher")
    time.sleep(0.2)
    q.ack([d])  # fetched on the dead connection: dropped, the broker requeued it
    once_more(lambda: q.publish([b"after"]))
    got = once_more(lambda: take_all(q))
    assert sorted(bodies(got)) == [b"after", b"job"]


def test_channel_closed_by_the_broker_is_noticed(rabbit: Rabbit) -> None:
    q = rabbit.open()
    q.publish([b"job"])
    [d] = q.fetch(10, 1.0)
    # An unknown delivery tag makes RabbitMQ close the channel, as its consumer_timeout would.
    consumer = consumer_of(q)
    consumer.post(lambda: consumer.channel.basic_ack(10_000))
    assert wait_until(lambda: consumer.dead, 3.0)
    assert "channel closed by the broker" in consumer.error
    q.ack([d])  # too late: dropped, and the broker requeued the message
    assert bodies(q.fetch(10, 1.0)) == [b"job"]

