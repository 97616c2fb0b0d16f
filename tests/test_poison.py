"""One message cannot stall a queue: whatever raises while a message is run
or settled, the delivery ends acked, retried, dead-lettered or released,
so it never holds a consumer's slot (a real node on RabbitMQ, whose
prefetch a leaked delivery would hold until the connection closed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import redis

from support.brokers import AMQP_URL, cleanup
from support.cluster import octoctl, octoctl_json, wait_until
from support.processes import Processes
from octobot.backends import open_backend
from octobot.envelope import Envelope
from octobot.node.execute import MAX_BACKOFF, retry_delay, settle_after_error
from octobot.node.metrics import QueueMetrics


def test_retry_delay_is_bounded_for_any_attempt() -> None:
    for attempt in (0, 1, 63, 64, 65, 2000, 10**12):
        assert 0 <= retry_delay(0.5, attempt) <= MAX_BACKOFF * 1.5


def test_poison_messages_do_not_stop_a_queue(procs: Processes, tmp_path: Path, key: str,
                                             redis_client: redis.Redis) -> None:
    """Concurrency 2 and two kinds of poison, two of each: a message whose
    attempt overflowed the backoff, and a task whose exception cannot be
    printed. Before the fix, 0 of 20 good messages ran in 20 s."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    procs.node(coord.target, "a", [])
    octoctl(coord.target, "queue", "add", key, "--backend", "amqp", "--url", AMQP_URL, "--concurrency", "2",
            "--max-retries", "0", "--paused")
    try:
        producer = open_backend("amqp", key, AMQP_URL)
        try:
            bodies = [replace(Envelope.new("e2e.fail", [f"{key}-late"], max_retries=3000), attempt=2000).encode()] * 2
            bodies += [Envelope.new("e2e.unprintable", [f"{key}-unprintable"]).encode()] * 2
            bodies += [Envelope.new("e2e.record", [key, i]).encode() for i in range(20)]
            producer.publish(bodies)
        finally:
            producer.close()
        octoctl(coord.target, "queue", "resume", key)
        wait_until(lambda: redis_client.hlen(f"{key}:runs") == 20, timeout=30, what="the good messages to run")
        # The unprintable ones are dead-lettered (the queue retries none); the
        # late ones ran once and wait for their retry, at most MAX_BACKOFF away.
        letters = wait_until(lambda: len(d := octoctl_json(coord.target, "dead", "list", key)) == 2 and d,
                             timeout=30, what="the unprintable messages in the dead letters")
        assert {d["reason"] for d in letters} == {
            "failed after 1 attempt(s): Unprintable (its message could not be read)"}
        assert redis_client.get(f"{key}-unprintable:attempts") == b"2"
        assert redis_client.get(f"{key}-late:attempts") == b"2"
        assert max(int(v) for v in redis_client.hvals(f"{key}:runs")) == 1
    finally:
        octoctl(coord.target, "queue", "rm", key, "--yes", check=False)
        cleanup("amqp", AMQP_URL, key)


def test_a_message_that_raised_anything_still_ends_in_the_dead_letters(tmp_path: Path) -> None:
    """The last net under the runner: whatever escaped running or settling."""
    backend = open_backend("sqlite", "poison", f"sqlite:///{tmp_path / 'queues.db'}")
    try:
        backend.publish([Envelope.new("e2e.record", ["k", 1]).encode()])
        [delivery] = backend.fetch(1, 1.0)
        settle_after_error(delivery, backend, QueueMetrics("poison"), KeyError("a bug of ours"))
        assert backend.fetch(1, 0.1) == []
        [letter] = backend.dead_list()
        assert letter.reason == "octobot could not settle the message: KeyError"
    finally:
        backend.close()
