"""AMQP 0-9-1 backend (RabbitMQ): one durable queue per Octobot queue.

A producer in any language enqueues with one publish on the default exchange::

    basic.publish(exchange="", routing_key="emails", body='{"task":"emails.send"}')

(mark it persistent, delivery_mode=2, to survive a broker restart). Queues for
queue ``q``, all durable:

- ``q`` — the queue itself, declared with the queue spec's ``x-`` options as
  arguments (``x-queue-type=quorum``, ``x-max-priority=10``, ``x-max-length=…``).
- ``q.delay.<ms>`` — retries waiting for their backoff, without plugins: the
  queue's message TTL dead-letters them back into ``q``. Delays are rounded up
  to a ladder (steps of 2**(1/4), at most ~19 % late) so that one delay queue
  holds one TTL and its head always expires first; an idle delay queue deletes
  itself (``x-expires``).
- ``q.dead`` — dead letters: JSON records, each with a uuid4-hex ``message_id``.

Delivery: a consumer holds its messages unacked until they are settled. When
its connection closes (node killed, network lost) RabbitMQ requeues them at once
for other consumers, so ``visibility_timeout`` and ``touch`` have nothing to do.
RabbitMQ's ``consumer_timeout`` (30 min by default) closes the channel of a
consumer that holds one message longer: raise it for tasks that run longer.

Publishing uses a transactional channel. RabbitMQ answers ``tx.commit`` only
once every message of the transaction is confirmed (the moment a publisher
confirm would be sent), so a publish that returned is safe in the broker; a
message it refuses (``x-overflow=reject-publish`` on a full queue) fails the
commit. pika's blocking channel waits for each confirm in turn; one commit
covers a whole batch, and every thread publishing at that moment, in one
round trip, and commits are pipelined.

Connection settings come from the URL query as pika reads them, e.g.
``amqps://user:pass@host:5671/vhost?heartbeat=60&socket_timeout=5``.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import BasicProperties

from octobot.backends.amqp_links import (BROKEN, PERSISTENT, Consumer, LinkDown, Publisher, Slot,
                                         by_consumer, describe, parameters)
from octobot.backends.base import Backend, BrokerUnavailable, DeadLetter, Delivery, decode_dead

R = TypeVar("R")

# How long a delay queue outlives its last retry before it deletes itself.
DELAY_QUEUE_LINGER_MS = 60_000

_DEAD_ID = re.compile(r"[0-9a-f]{32}")

# Dead letters taken off the dead queue, with their delivery tags.
_Tagged = list[tuple[int, DeadLetter]]


def queue_arguments(options: Mapping[str, str]) -> dict[str, Any]:
    """The ``x-`` options as queue arguments: numbers become ints, true/false booleans."""
    def value(text: str) -> Any:
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        return text == "true" if text in ("true", "false") else text

    return {key: value(text) for key, text in options.items() if key.startswith("x-")}


def delay_bucket(delay: float) -> int:
    """``delay`` seconds in ms, rounded up to the ladder ceil(2**(k/4)); 0 for no delay."""
    ms = math.ceil(delay * 1000)
    if ms <= 0:
        return 0
    return max(ms, math.ceil(2 ** (math.ceil(4 * math.log2(ms)) / 4)))


def _letter(properties: BasicProperties, body: bytes) -> DeadLetter:
    # One not of ours (e.g. dead-lettered into q.dead by a broker policy) is shown as it came.
    return decode_dead(properties.message_id or "", body, float(properties.timestamp or 0))


class AmqpBackend(Backend):
    """A durable RabbitMQ queue, consumed with prefetch and manual acks.

        backend = AmqpBackend("emails", "amqp://guest:guest@127.0.0.1:5672/%2F",
                              {"x-queue-type": "quorum"}, prefetch=16)
        backend.publish([b'{"task": "emails.send", "args": ["a@b.c"]}'])
        for delivery in backend.fetch(16, timeout=1.0):
            ...  # run it
            backend.ack([delivery])
        backend.close()

    Safe to share between threads: each of its two connections (consuming,
    publishing) is driven by its own thread, and lost connections are replaced
    on the next call.
    """

    schemes = ("amqp", "amqps")
    # RabbitMQ's queue arguments (x-queue-type, x-max-length, ...): the broker checks them.
    option_prefixes = ("x-",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arguments = queue_arguments(self.options)
        self._dead_queue = f"{self.queue}.dead"
        name = f"octobot {self.consumer_name} {self.queue}"
        consumer_params = parameters(self.url, f"{name} consumer")
        publisher_params = parameters(self.url, f"{name} publisher")
        self._where = f"{consumer_params.host}:{consumer_params.port}"
        self._consumers = Slot(lambda: Consumer(consumer_params, self.queue, self._declare))
        self._publishers = Slot(lambda: Publisher(publisher_params, self._setup_publisher))

    @classmethod
    def normalize_url(cls, url: str) -> str:
        url = super().normalize_url(url)
        try:
            pika.URLParameters(url)
        except ValueError as exc:
            raise ValueError(f"bad AMQP URL {url!r}: {exc}") from None
        return url

    # -- topology -----------------------------------------------------------

    def _declare(self, channel: BlockingChannel) -> Any:
        """Declare the queue (idempotent); the reply carries its message count."""
        return channel.queue_declare(self.queue, durable=True, arguments=self._arguments)

    def _setup_publisher(self, channel: BlockingChannel) -> None:
        self._declare(channel)
        # Dead letters are as safe as the queue (quorum if it is), without its limits.
        kind = {k: v for k, v in self._arguments.items() if k == "x-queue-type"}
        channel.queue_declare(self._dead_queue, durable=True, arguments=kind)

    def _declare_delay(self, channel: BlockingChannel, name: str, ms: int) -> None:
        """The delay queue for ``ms``: its messages expire back into the queue.

        Declared before every retry, which also restarts its x-expires clock,
        so it cannot vanish under a message.
        """
        channel.queue_declare(name, durable=True, arguments={
            "x-message-ttl": ms, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.queue,
            "x-expires": ms + DELAY_QUEUE_LINGER_MS})

    # -- plumbing ------------------------------------------------------------

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        """Report a lost or unreachable broker as BrokerUnavailable; the next call reconnects."""
        try:
            yield
        except BrokerUnavailable:
            raise  # said already (a refusal, a ConnectionError like the broken ones below)
        except (LinkDown, *BROKEN) as exc:
            raise BrokerUnavailable(f"amqp {self._where} unreachable: {describe(exc)}") from exc

    def _send(self, routing_key: str, bodies: Sequence[bytes], properties: BasicProperties = PERSISTENT,
              prepare: Callable[[BlockingChannel], object] | None = None) -> None:
        self._sending(routing_key, bodies, properties, prepare).result()

    def _sending(self, routing_key: str, bodies: Sequence[bytes], properties: BasicProperties = PERSISTENT,
                 prepare: Callable[[BlockingChannel], object] | None = None) -> Future[None]:
        """Start publishing; the future fails with BrokerUnavailable if the link dies first."""
        with self._unavailable():
            sent = self._publishers.get().send(routing_key, bodies, properties, prepare)
        out: Future[None] = Future()

        def settle(done: Future[None]) -> None:
            try:
                with self._unavailable():
                    out.set_result(done.result())
            except BaseException as exc:
                out.set_exception(exc)

        sent.add_done_callback(settle)
        return out

    def _publishing(self, job: Callable[[Publisher], R]) -> R:
        """Run ``job`` on the publishing link's thread."""
        with self._unavailable():
            link = self._publishers.get()
            return link.call(lambda: job(link))

    def _take_dead(self, channel: BlockingChannel, limit: int | None) -> _Tagged:
        """Up to ``limit`` dead letters (all if None), oldest first, with their delivery tags on ``channel``."""
        letters: _Tagged = []
        while limit is None or len(letters) < limit:
            method, properties, body = channel.basic_get(self._dead_queue)
            if method is None:
                break
            letters.append((method.delivery_tag, _letter(properties, body)))
        return letters

    # -- producer -------------------------------------------------------------

    def _publish(self, bodies: Sequence[bytes]) -> None:
        self._send(self.queue, bodies)

    def _publish_async(self, bodies: Sequence[bytes]) -> Future[None]:
        return self._sending(self.queue, bodies)

    def connect(self) -> None:
        with self._unavailable():
            self._publishers.get()

    # -- consumer -------------------------------------------------------------

    def _fetch(self, max_count: int, timeout: float) -> list[Delivery]:
        with self._unavailable():
            return self._consumers.get().take(max_count, timeout, self.prefetch)

    def _ack(self, deliveries: Sequence[Delivery]) -> None:
        for consumer, tags in by_consumer(deliveries).items():
            consumer.ack(tags)

    def _release(self, deliveries: Sequence[Delivery]) -> None:
        for consumer, tags in by_consumer(deliveries).items():
            consumer.release(tags)

    def _retry(self, delivery: Delivery, body: bytes, delay: float) -> None:
        ms = delay_bucket(delay)
        # Publish first, then ack: a crash in between makes a duplicate, never a loss.
        if ms:
            delay_queue = f"{self.queue}.delay.{ms}"
            self._send(delay_queue, [body], prepare=lambda channel: self._declare_delay(channel, delay_queue, ms))
        else:
            self._send(self.queue, [body])
        self._ack([delivery])

    def _dead_letter(self, delivery: Delivery, record: bytes) -> None:
        properties = BasicProperties(delivery_mode=2, message_id=uuid.uuid4().hex, timestamp=int(time.time()))
        self._send(self._dead_queue, [record], properties)
        self._ack([delivery])

    def _set_prefetch(self, count: int) -> None:
        consumer = self._consumers.current()
        if consumer is not None:
            try:
                consumer.limit(count)
            except LinkDown:
                pass  # the next connection starts with the new limit

    def _touch(self, deliveries: Sequence[Delivery]) -> None:
        """Nothing to do: a message stays ours while our connection lives."""

    def _depth(self) -> int:
        """Ready messages, from a declare: passive would fail on a deleted queue, this recreates it."""
        return int(self._publishing(lambda link: self._declare(link.channel).method.message_count))

    def _purge(self) -> int:
        """Drop the waiting messages; in-flight ones and retries waiting in delay queues stay."""
        return int(self._publishing(lambda link: link.channel.queue_purge(self.queue).method.message_count))

    # -- dead letters -----------------------------------------------------------

    def _dead_list(self, limit: int) -> list[DeadLetter]:
        def peek(link: Publisher) -> list[DeadLetter]:
            channel = link.getting_channel()
            letters = self._take_dead(channel, limit)
            if letters:
                channel.basic_nack(0, multiple=True, requeue=True)  # tag 0: all unacked on the channel
            return [letter for _, letter in letters]

        return self._publishing(peek)

    def _dead_retry(self, ids: Sequence[str] | None) -> int:
        wanted = None if ids is None else set(ids)
        bad = [i for i in wanted or () if not _DEAD_ID.fullmatch(i)]
        if bad:
            raise ValueError(f"not dead-letter ids: {', '.join(sorted(bad))}")

        def take(link: Publisher) -> tuple[BlockingChannel, _Tagged]:
            # A channel of its own: the letters it holds are settled after their republish is
            # confirmed, and closing it puts back those it did not ack.
            channel = link.connection.channel()
            return channel, self._take_dead(channel, None)

        with self._unavailable():
            link = self._publishers.get()
            channel, letters = link.call(lambda: take(link))
            try:
                chosen = [(tag, letter) for tag, letter in letters
                          if letter.retriable and (wanted is None or letter.id in wanted)]
                if chosen:
                    # Republish first, then ack: a crash in between makes a duplicate, never a loss.
                    link.send(self.queue, [letter.revived() for _, letter in chosen]).result()
                    link.call(lambda: [channel.basic_ack(tag) for tag, _ in chosen])
            finally:
                try:
                    link.call(channel.close)
                except LinkDown:
                    pass  # the connection is gone, and with it the letters went back
            return len(chosen)

    def _dead_purge(self) -> int:
        # On the getting channel, so that letters a listing just put back are purged too.
        return int(self._publishing(
            lambda link: link.getting_channel().queue_purge(self._dead_queue).method.message_count))

    def close(self) -> None:
        """Close both connections; messages fetched and not acked go back to the queue."""
        self._consumers.close()
        self._publishers.close()
