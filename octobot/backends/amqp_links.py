"""pika's blocking connections, each driven by a thread of its own, for the
AMQP backend (amqp.py): the publishing link (publisher confirms, pipelined)
and the consuming link (basic.consume into a buffer), and the slot that
replaces a link that died.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from octobot.backends.base import BrokerRefused, Delivery

R = TypeVar("R")
L = TypeVar("L", bound="Link")

# pika logs each failed connection attempt in several ERROR lines with tracebacks.
# This backend reports every failure once, as BrokerUnavailable with the reason,
# and the node logs state changes, not attempts; so pika keeps quiet unless the
# application configured its logger first.
if logging.getLogger("pika").level == logging.NOTSET:
    logging.getLogger("pika").setLevel(logging.CRITICAL)

# Load balancers drop idle connections; heartbeats keep ours alive and notice dead ones.
DEFAULT_HEARTBEAT = 30
# A broker short of memory or disk blocks publishers; fail (and retry later) instead of hanging.
BLOCKED_TIMEOUT = 60.0
# How often a link's thread looks up from the socket to run its periodic checks.
TICK = 1.0
# Buffered messages that nobody fetched for this long go back to the queue (e.g. a paused queue).
IDLE_GIVE_BACK = 5.0
# How long opening a publisher waits for the broker to turn confirms on.
CONFIRM_SELECT_TIMEOUT = 10.0

PERSISTENT = BasicProperties(delivery_mode=2)  # survives a broker restart
BROKEN = (pika.exceptions.AMQPError, OSError)


def parameters(url: str, name: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    query = parse_qs(urlsplit(url).query)
    if "heartbeat" not in query:
        params.heartbeat = DEFAULT_HEARTBEAT
    if "blocked_connection_timeout" not in query:
        params.blocked_connection_timeout = BLOCKED_TIMEOUT
    # Shown in RabbitMQ's connection list, so an operator can tell whose connection it is.
    params.client_properties = {"connection_name": name, **(params.client_properties or {})}
    return params


def describe(exc: BaseException) -> str:
    if isinstance(exc, LinkDown):
        text = str(exc)
    elif str(exc):
        text = f"{type(exc).__name__}: {exc}"
    else:  # e.g. a refused connection: the detail is only in the args
        text = repr(exc)
    return " ".join(text.split())


class LinkDown(Exception):
    """The link's connection is gone (the message says why)."""


class Link:
    """One AMQP connection with one channel, and the thread that owns them.

    pika's BlockingConnection is not thread-safe, so only this thread touches
    it: other threads hand it jobs with ``call`` (and wait) or ``post`` (and
    don't). Between jobs the thread serves heartbeats. A broker error kills the
    link for good; the backend opens a new one on its next call.
    """

    def __init__(self, params: pika.URLParameters, setup: Callable[[BlockingChannel], None]) -> None:
        self.connection = pika.BlockingConnection(params)
        self.dead = False
        self.error = ""
        self._lock = threading.Lock()
        self._waiting: set[Future[Any]] = set()  # calls to fail if the link dies first
        self._stopping = False
        try:
            self.channel = self.connection.channel()
            setup(self.channel)
        except BaseException:
            self._close_connection()
            raise
        self._thread = threading.Thread(target=self._run, name=params.client_properties["connection_name"],
                                        daemon=True)
        self._thread.start()

    def call(self, job: Callable[[], R]) -> R:
        """Run ``job`` on the link's thread and return its result; LinkDown if the link dies."""
        future: Future[R] = Future()

        def run() -> None:
            try:
                future.set_result(job())
            except BROKEN as exc:
                self._fail(exc)
                raise  # out of process_data_events: the thread closes the connection
            except Exception as exc:
                future.set_exception(exc)

        return self._await(future, lambda: self.post(run))

    def _await(self, future: Future[R], submit: Callable[[], None]) -> R:
        """Run ``submit`` (which hands the link work that settles ``future``) and wait for the result;
        LinkDown if the link dies first."""
        return self._track(future, submit).result()

    def _track(self, future: Future[R], submit: Callable[[], None]) -> Future[R]:
        """Run ``submit`` (which hands the link work that settles ``future``); ``future``
        fails with LinkDown if the link dies before settling it."""
        with self._lock:
            if self.dead:
                raise LinkDown(self.error)
            self._waiting.add(future)
        future.add_done_callback(self._untrack)
        try:
            submit()
        except BaseException:
            future.cancel()
            raise
        return future

    def _untrack(self, future: Future[Any]) -> None:
        with self._lock:
            self._waiting.discard(future)

    def post(self, job: Callable[[], None]) -> None:
        """Have the link's thread run ``job`` soon, in posting order."""
        try:
            self.connection.add_callback_threadsafe(job)
        except BROKEN as exc:  # the connection closed under us
            raise LinkDown(describe(exc)) from exc

    def close(self) -> None:
        """Close the connection after the jobs already posted; unacked messages go back to their queue."""
        try:
            self.post(self._stop)
        except LinkDown:
            pass  # closed already
        self._thread.join(timeout=5.0)

    def _stop(self) -> None:
        self._stopping = True

    def _run(self) -> None:
        try:
            while not self._stopping:
                self.connection.process_data_events(time_limit=TICK)
                if not self.channel.is_open:
                    # Closed by the broker between commands, which pika does not raise:
                    # RabbitMQ's consumer_timeout, for one, or a commit it refused.
                    reason = self.channel._closing_reason  # pika keeps the broker's reply here
                    raise LinkDown(f"channel closed by the broker: {describe(reason)}" if reason else
                                    "channel closed by the broker (consumer_timeout? see the RabbitMQ log)")
                self._tick()
        except Exception as exc:
            self._fail(exc)
        finally:
            self._fail(LinkDown("connection closed"))
            self._close_connection()

    def _fail(self, exc: BaseException) -> None:
        """Mark the link dead (the first reason wins) and fail the calls waiting on it."""
        with self._lock:
            if self.dead:
                return
            self.dead = True
            self.error = describe(exc)
            waiting, self._waiting = self._waiting, set()
        for future in waiting:
            if not future.done():
                future.set_exception(LinkDown(self.error))
        self._died()

    def _close_connection(self) -> None:
        try:
            if self.connection.is_open:
                self.connection.close()
        except BROKEN:
            pass  # it is going away either way

    def _tick(self) -> None:
        """Work on the link's thread after each round of I/O events (at least every TICK)."""

    def _died(self) -> None:
        """Clean up after the connection is lost."""


@dataclass(slots=True)
class Outgoing:
    """Messages one caller publishes, and how the caller learns they are confirmed."""

    routing_key: str
    bodies: Sequence[bytes]
    properties: BasicProperties
    prepare: Callable[[BlockingChannel], object] | None  # e.g. declare the target queue first
    left: int = 0  # messages not confirmed yet
    done: Future[None] = field(default_factory=Future)


class Publisher(Link):
    """The producing side: a channel in publisher-confirm mode.

    Callers put their messages in an outbox; the link's thread publishes
    everything waiting there without waiting for the broker, and settles each
    caller's future when the broker confirms its last message (or fails it
    when the broker refuses one). Publishes from many threads, and batch
    after batch, share the round trips.
    """

    def __init__(self, params: pika.URLParameters, setup: Callable[[BlockingChannel], None]) -> None:
        self._outbox: list[Outgoing] = []
        self._outbox_lock = threading.Lock()
        self._getting: BlockingChannel | None = None
        # Unconfirmed messages by delivery tag (the channel numbers them 1, 2, ... in order).
        self._unconfirmed: dict[int, Outgoing] = {}
        self._next_tag = 1
        super().__init__(params, lambda channel: (self._select_confirms(channel), setup(channel)))

    def _select_confirms(self, channel: BlockingChannel) -> None:
        """Put the channel in confirm mode with our own callback (pika's blocking
        channel would wait for each confirm in turn)."""
        selected: list[object] = []
        channel._impl.confirm_delivery(ack_nack_callback=self._confirmed, callback=selected.append)
        deadline = time.monotonic() + CONFIRM_SELECT_TIMEOUT
        while not selected:
            if time.monotonic() > deadline:
                raise LinkDown("the broker did not answer confirm.select")
            self.connection.process_data_events(time_limit=0.01)  # returns at its limit, not at the reply

    def getting_channel(self) -> BlockingChannel:
        """A plain channel for basic.get, on the link's thread. It stays open: the broker handles
        one channel's commands in order, so what it requeued is back before its next get."""
        if self._getting is None or not self._getting.is_open:
            self._getting = self.connection.channel()
        return self._getting

    def send(self, routing_key: str, bodies: Sequence[bytes], properties: BasicProperties = PERSISTENT,
             prepare: Callable[[BlockingChannel], object] | None = None) -> Future[None]:
        """Publish from any thread; the future is settled once the broker confirmed the messages."""
        if not all(isinstance(body, bytes) for body in bodies):  # before any is sent: none can be taken back
            raise TypeError("message bodies must be bytes")
        outgoing = Outgoing(routing_key, bodies, properties, prepare, left=len(bodies))
        return self._track(outgoing.done, lambda: self._enqueue(outgoing))

    def _enqueue(self, outgoing: Outgoing) -> None:
        with self._outbox_lock:
            self._outbox.append(outgoing)
            first = len(self._outbox) == 1
        if first:  # later ones ride along with the flush posted for the first
            self.post(self._flush)

    def _flush(self) -> None:
        with self._outbox_lock:
            batch, self._outbox = self._outbox, []
        try:
            # The channel underneath: the blocking one flushes the socket after every message.
            publish = self.channel._impl.basic_publish
            for outgoing in batch:
                if outgoing.prepare is not None:
                    outgoing.prepare(self.channel)
                for body in outgoing.bodies:
                    publish("", outgoing.routing_key, body, outgoing.properties)
                    self._unconfirmed[self._next_tag] = outgoing
                    self._next_tag += 1
        except BROKEN as exc:
            self._fail(exc)  # fails every waiting caller, this batch's included
            raise

    def _confirmed(self, frame: Any) -> None:
        """basic.ack or basic.nack for one delivery tag, or for all up to it (``multiple``)."""
        method = frame.method
        if method.multiple:  # the dict holds tags in order: stop at the first one past it
            tags = list(itertools.takewhile(lambda tag: tag <= method.delivery_tag, self._unconfirmed))
        else:
            tags = [method.delivery_tag]
        refused = isinstance(method, Basic.Nack)
        for tag in tags:
            outgoing = self._unconfirmed.pop(tag, None)
            if outgoing is None or outgoing.done.done():
                continue
            if refused:
                outgoing.done.set_exception(BrokerRefused(
                    f"RabbitMQ refused a message for {outgoing.routing_key!r} (basic.nack:"
                    " a full queue with x-overflow=reject-publish, or a broker error)"))
                continue
            outgoing.left -= 1
            if not outgoing.left:
                outgoing.done.set_result(None)


class Consumer(Link):
    """The consuming side: basic.consume pushes messages into a buffer that ``take`` drains.

    Each delivery's receipt is ``(consumer, delivery_tag)``: an ack for a message
    fetched on a connection that has since died is dropped, because RabbitMQ has
    requeued that message already.
    """

    def __init__(self, params: pika.URLParameters, queue: str, declare: Callable[[BlockingChannel], object]) -> None:
        self._queue = queue
        self._cond = threading.Condition()
        # Buffered deliveries: appended by the link's thread, taken under _cond.
        self._ready: deque[Delivery] = deque()
        # Guarded by _cond: acks waiting for the link's thread.
        self._acks: list[int] = []
        self._flush_posted = False
        # Written on the link's thread only (other threads may read them).
        self._open: set[int] = set()  # delivered, not yet settled
        self._consumer_tag: str | None = None
        self._qos = 0  # prefetch of the current (or next) subscription
        self._last_take = time.monotonic()
        self._fresh = False  # deliveries arrived that the fetcher was not told about yet

        def setup(channel: BlockingChannel) -> None:
            declare(channel)
            channel.add_on_cancel_callback(self._cancelled)

        super().__init__(params, setup)

    # -- any thread ----------------------------------------------------------

    def take(self, max_count: int, timeout: float, limit: int) -> list[Delivery]:
        """Up to ``max_count`` deliveries, waiting up to ``timeout`` s for the first.

        The broker pushes up to the prefetch: ``limit`` when set, otherwise the
        most that one take has asked for, so that nothing is fetched unasked.
        """
        self._last_take = time.monotonic()
        qos = limit or max(self._qos, max_count)
        if qos != self._qos or self._consumer_tag is None:
            self.call(lambda: self._subscribe(qos))
        with self._cond:
            self._cond.wait_for(lambda: self._ready or self.dead, timeout)
            if self.dead:
                raise LinkDown(self.error)
            return [self._ready.popleft() for _ in range(min(max_count, len(self._ready)))]

    def ack(self, tags: list[int]) -> None:
        """Queue acks; the link's thread sends them in as few frames as it can."""
        with self._cond:
            self._acks += tags
            if self._flush_posted:
                return
            self._flush_posted = True
        try:
            self.post(self._flush_acks)
        except LinkDown:
            pass  # RabbitMQ requeued these messages when the connection died

    def release(self, tags: list[int]) -> None:
        """Requeue these messages (and everything buffered) so that any consumer may take them."""
        try:
            self.call(lambda: self._give_back(tags))
        except LinkDown:
            pass  # requeued by the broker already

    def limit(self, count: int) -> None:
        """Lower the prefetch to ``count`` now: the buffer goes back, and the next take subscribes anew.

        AMQP binds a prefetch to a consumer, not to a channel: messages taken
        before stay unacked until their tasks finish, on top of the new
        consumer's prefetch, for as long as those tasks run.
        """
        def lower() -> None:
            if self._consumer_tag is not None and self._qos > count:
                self._give_back([])

        self.call(lower)

    # -- the link's thread ---------------------------------------------------

    def _subscribe(self, qos: int) -> None:
        # basic.qos binds only consumers started after it: a new prefetch needs a new consumer.
        if self._consumer_tag is not None and qos != self._qos:
            self._give_back([])
        if self._consumer_tag is None:
            if qos != self._qos:
                self.channel.basic_qos(prefetch_count=qos)
                self._qos = qos
            self._consumer_tag = self.channel.basic_consume(self._queue, self._on_message)

    def _on_message(self, _channel: BlockingChannel, method: Basic.Deliver, _properties: BasicProperties,
                    body: bytes) -> None:
        self._open.add(method.delivery_tag)
        # No wake-up per message: _tick wakes the fetcher once for all that one read brought.
        self._ready.append(Delivery(body=body, receipt=(self, method.delivery_tag)))
        self._fresh = True

    def _flush_acks(self) -> None:
        with self._cond:
            # Tags not open were settled already; acking them twice would close the channel.
            acks = set(self._acks) & self._open
            self._acks.clear()
            self._flush_posted = False
        self._open -= acks
        # Every tag below the lowest open one is settled now: one multiple-ack covers those of this batch.
        lowest = min(self._open, default=math.inf)
        below = [tag for tag in acks if tag < lowest]
        if below:
            self.channel.basic_ack(max(below), multiple=True)
        for tag in acks:
            if tag > lowest:
                self.channel.basic_ack(tag)

    def _give_back(self, tags: list[int]) -> None:
        # Stop consuming first, or the broker would push the requeued messages straight back to us.
        if self._consumer_tag is not None:
            self.channel.basic_cancel(self._consumer_tag)
            self._consumer_tag = None
        with self._cond:
            tags = [*tags, *(d.receipt[1] for d in self._ready)]
            self._ready.clear()
        for tag in tags:
            if tag in self._open:
                self._open.discard(tag)
                self.channel.basic_nack(tag, requeue=True)
        # A round trip through the queue: once it returns, the broker has requeued them.
        self.channel.queue_declare(self._queue, passive=True)

    def _tick(self) -> None:
        if self._fresh:
            self._fresh = False
            with self._cond:
                self._cond.notify()
        if self._consumer_tag is not None and self._ready and time.monotonic() - self._last_take > IDLE_GIVE_BACK:
            self._give_back([])

    def _cancelled(self, _method: Any) -> None:
        raise LinkDown(f"RabbitMQ cancelled the consumer of {self._queue} (queue deleted?)")

    def _died(self) -> None:
        with self._cond:
            self._ready.clear()  # they are requeued; nobody could ack them now
            self._cond.notify_all()


class Slot(Generic[L]):
    """The current link of one kind: opened on first use, replaced when it has died."""

    def __init__(self, open_link: Callable[[], L]) -> None:
        self._open_link = open_link
        self._link: L | None = None
        # Held while connecting, so concurrent callers share one attempt.
        self._lock = threading.Lock()

    def get(self) -> L:
        with self._lock:
            if self._link is None or self._link.dead:
                if self._link is not None:
                    self._link.close()
                self._link = self._open_link()
            return self._link

    def current(self) -> L | None:
        """The link if it is alive; never connects."""
        link = self._link
        return link if link is not None and not link.dead else None

    def close(self) -> None:
        with self._lock:
            if self._link is not None:
                self._link.close()
                self._link = None


def by_consumer(deliveries: Sequence[Delivery]) -> dict[Consumer, list[int]]:
    groups: dict[Consumer, list[int]] = {}
    for delivery in deliveries:
        consumer, tag = delivery.receipt
        groups.setdefault(consumer, []).append(tag)
    return groups
