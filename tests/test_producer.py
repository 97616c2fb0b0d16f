"""The producer's outbox (octobot/outbox.py): enqueue returns at once, and no
message the broker did not take is lost in silence. Against real brokers,
one stopped under the producer and one refusing messages."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pika
import pytest

import octobot
from octobot.backends import open_backend
from octobot.envelope import Envelope
from octobot.outbox import MAX_BATCH, NotConfirmed, Outbox, _Pending, chunks
from support.brokers import AMQP_URL, SERVER_URLS, PrivateBroker, cleanup, free_port
from support.cluster import octoctl
from support.processes import Processes


def _pending(queue: str, n: int) -> _Pending:
    return _Pending(queue, [f"{queue}{i}" for i in range(n)], [b"x"] * n, n, False, left=n)


def test_chunks_keep_order_per_queue_and_split_big_calls() -> None:
    a1, b1, a2, big = _pending("a", 3), _pending("b", 2), _pending("a", 4), _pending("a", 2 * MAX_BATCH + 5)
    out = chunks([a1, b1, a2, big])
    assert [(c.queue, len(c.bodies)) for c in out] == [("a", MAX_BATCH), ("b", 2), ("a", MAX_BATCH), ("a", 12)]
    assert [(p is a1, p is a2, n) for p, n in out[0].parts] == [(True, False, 3), (False, True, 4),
                                                                (False, False, MAX_BATCH - 7)]
    # Every message of every call is in exactly one chunk, in the order put.
    assert sum(n for c in out for p, n in c.parts if p is big) == len(big.bodies)
    assert chunks([]) == []


def test_a_failed_publish_is_raised_on_the_next_call_with_its_ids() -> None:
    calls: list[list[bytes]] = []

    def publish(queue: str, bodies: list[bytes]) -> Future[None]:
        calls.append(bodies)
        done: Future[None] = Future()
        if b"bad" in bodies:
            done.set_exception(ValueError("refused"))
        else:
            done.set_result(None)
        return done

    outbox = Outbox(publish)
    outbox.put("q", ["1"], [b"ok"], wait=True)
    with pytest.raises(NotConfirmed, match="refused") as waited:
        outbox.put("q", ["2"], [b"bad"], wait=True)
    assert waited.value.ids == ["2"]
    outbox.put("q", ["3"], [b"bad"])  # returns: the failure comes later
    with pytest.raises(NotConfirmed) as later:
        outbox.flush(5)
    assert later.value.ids == ["3"]
    outbox.flush(5)  # said once
    outbox.close()
    with pytest.raises(RuntimeError, match="closed"):
        outbox.put("q", ["4"], [b"ok"])


@pytest.fixture(params=sorted(SERVER_URLS))
def broker_queue(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    kind, url, queue = request.param, SERVER_URLS[request.param], f"prod-{uuid.uuid4().hex[:10]}"
    yield kind, url, queue
    cleanup(kind, url, queue)


def _all_ids(kind: str, url: str, queue: str, options: dict[str, str] | None = None) -> list[str]:
    backend = open_backend(kind, queue, url, options)
    try:
        ids: list[str] = []
        while deliveries := backend.fetch(500, 1.0):
            ids += [Envelope.parse(d.body).id for d in deliveries]
            backend.ack(deliveries)
        return ids
    finally:
        backend.close()


def test_every_message_enqueued_without_waiting_arrives_once_in_order(broker_queue: tuple[str, str, str]) -> None:
    kind, url, queue = broker_queue
    with octobot.Client(url) as client:
        started = time.monotonic()
        singles = [client.enqueue(queue, "t.noop", args=[i]) for i in range(3000)]
        returned = time.monotonic() - started
        batch = client.enqueue_many(queue, [Envelope.new("t.noop", [i]) for i in range(2500)])
        confirmed = client.enqueue(queue, "t.noop", wait=True)
        client.flush(30)
    ids = _all_ids(kind, url, queue)
    assert ids == [*singles, *batch, confirmed]
    print(f"{kind}: 3000 calls returned in {returned:.2f}s")


def test_a_stopped_broker_fails_the_waiting_caller_and_the_next_call_names_the_rest(tmp_path: Path) -> None:
    redis = PrivateBroker("redis", tmp_path)
    queue = f"prod-{uuid.uuid4().hex[:10]}"
    try:
        with octobot.Client(redis.url, options={"visibility_timeout": "30"}) as client:
            before = [client.enqueue(queue, "t.noop", args=[i]) for i in range(100)]
            client.flush(10)
            redis.stop()
            started = time.monotonic()
            lost = [client.enqueue(queue, "t.noop", args=[i]) for i in range(100)]
            assert time.monotonic() - started < 1.0, "enqueue waits for nobody"
            with pytest.raises(NotConfirmed, match="unreachable|refused|Connection") as raised:
                client.flush(30)
            assert sorted(raised.value.ids) == sorted(lost)
            with pytest.raises(NotConfirmed) as waited:
                client.enqueue(queue, "t.noop", wait=True)
            assert len(waited.value.ids) == 1
            redis.start()  # back: the same client publishes again
            after = client.enqueue(queue, "t.noop", wait=True)
        assert _all_ids("redis", redis.url, queue) == [*before, after]
    finally:
        redis.stop()


def test_messages_rabbitmq_refuses_are_named_not_lost() -> None:
    queue = f"prod-{uuid.uuid4().hex[:10]}"
    options = {"x-max-length": "5", "x-overflow": "reject-publish"}
    try:
        with octobot.Client(AMQP_URL, options=options) as client:
            kept = [client.enqueue(queue, "t.noop", args=[i], wait=True) for i in range(5)]
            with pytest.raises(NotConfirmed, match="basic.nack"):
                client.enqueue(queue, "t.noop", wait=True)
            refused = [client.enqueue(queue, "t.noop", args=[i]) for i in range(20)]
            with pytest.raises(NotConfirmed, match="basic.nack") as raised:
                client.flush(30)
            assert set(refused) <= set(raised.value.ids)  # each one missing is named
        backend = open_backend("amqp", queue, AMQP_URL, options)
        try:
            assert backend.depth() == 5
        finally:
            backend.close()
        assert _all_ids("amqp", AMQP_URL, queue, options) == kept
    finally:
        with pika.BlockingConnection(pika.URLParameters(AMQP_URL)) as conn:
            channel = conn.channel()
            for name in (queue, f"{queue}.dead"):
                channel.queue_delete(name)


def test_a_producer_that_exits_without_close_still_sends_everything(tmp_path: Path) -> None:
    url, queue = SERVER_URLS["redis"], f"prod-{uuid.uuid4().hex[:10]}"
    script = tmp_path / "producer.py"
    script.write_text(textwrap.dedent(f"""
        import octobot
        client = octobot.Client({url!r})
        for i in range(5000):
            print(client.enqueue({queue!r}, "t.noop", args=[i]))
    """))
    try:
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
        assert _all_ids("redis", url, queue) == out.stdout.split()
    finally:
        cleanup("redis", url, queue)


def test_an_unreachable_broker_is_reported_by_flush_not_by_enqueue() -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    with octobot.Client(url) as client:
        ids = [client.enqueue("nowhere", "t.noop") for _ in range(3)]
        with pytest.raises(NotConfirmed, match="unreachable") as raised:
            client.flush(30)
        assert raised.value.ids == ids


def test_a_refused_enqueue_through_the_coordinator_is_one_line(procs: Processes, tmp_path: Path) -> None:
    """RabbitMQ's basic.nack reached a client of the coordinator as INTERNAL before it was a broker error."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    queue = f"prod-{uuid.uuid4().hex[:10]}"
    try:
        octoctl(coord.target, "queue", "add", queue, "--backend", "amqp", "--url", AMQP_URL,
                "--option", "x-max-length=1", "--option", "x-overflow=reject-publish")
        octoctl(coord.target, "enqueue", queue, "t.noop")
        refused = octoctl(coord.target, "enqueue", queue, "t.noop", check=False)
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr.startswith("error: the queue's broker is unavailable: RabbitMQ refused a message")
        assert refused.stderr.count("\n") == 1
    finally:
        with pika.BlockingConnection(pika.URLParameters(AMQP_URL)) as conn:
            channel = conn.channel()
            for name in (queue, f"{queue}.dead"):
                channel.queue_delete(name)
