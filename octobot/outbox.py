"""A producer's outbox: enqueue without waiting for the broker, and lose nothing.

``Client.enqueue`` puts its message here and returns. One thread per client
takes everything waiting and publishes it queue by queue, in batches (one
pipeline on Redis, one transaction commit on RabbitMQ, one write on
beanstalkd), so a producer calling in a loop pays one round trip per batch,
not per message. A message is confirmed when its batch's publish returned,
which each backend does only once the broker has it.

A batch the broker did not take is never dropped in silence: its messages
raise NotConfirmed, with their ids, from the caller waiting on them
(``wait=True``) or else from the client's next call, ``flush()`` or
``close()``. A full outbox makes callers wait, so a producer outrunning its
broker slows down instead of filling memory.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue

from octobot.backends import BrokerUnavailable

log = logging.getLogger("octobot.client")

# Most messages, and bytes, waiting at once: beyond them enqueue blocks (backpressure).
MAX_PENDING = 50_000
MAX_PENDING_BYTES = 64 << 20
# Most messages in one publish: one pipeline or transaction stays a few MB.
MAX_BATCH = 1_000
# A broker that drops the connection is tried again after these pauses before
# a batch counts as not confirmed (a retry may duplicate, never lose, a message).
RETRY_PAUSES = (0.2, 1.0)
# The publishing thread ends after this long with nothing to send; the next enqueue starts it again.
IDLE_EXIT = 5.0
# How long the interpreter's exit waits for unsent messages.
EXIT_FLUSH = 30.0


class NotConfirmed(Exception):
    """The broker did not confirm these messages; ``ids`` names them, so the producer can send them again.

    Raised by a later call, that call enqueued nothing of its own: send its messages again too.
    """

    def __init__(self, ids: list[str], reason: str) -> None:
        super().__init__(f"{len(ids)} message(s) not confirmed by the broker "
                         f"(first: {', '.join(ids[:3])}): {reason}")
        self.ids = ids
        self.reason = reason


@dataclass(slots=True)
class _Pending:
    """One call's messages."""

    queue: str
    ids: list[str]
    bodies: list[bytes]
    size: int
    waited: bool  # a caller waits on ``done``; otherwise a failure is raised on a later call
    left: int = 0  # messages not settled yet
    reason: str = ""  # why some of them were not confirmed
    done: Future[None] = field(default_factory=Future)


@dataclass(slots=True)
class _Chunk:
    """Messages published in one call: whole calls' messages, or a slice of a big call."""

    queue: str
    bodies: list[bytes]
    parts: list[tuple[_Pending, int]]  # whose messages, how many of each
    tries: int = 0
    not_before: float = 0.0


def chunks(batch: list[_Pending], limit: int = MAX_BATCH) -> list[_Chunk]:
    """The calls in ``batch`` as publishes of at most ``limit`` messages, queue by queue, in order."""
    out: list[_Chunk] = []
    open_chunk: dict[str, _Chunk] = {}
    for pending in batch:
        at = 0
        while at < len(pending.bodies):
            chunk = open_chunk.get(pending.queue)
            if chunk is None or len(chunk.bodies) >= limit:
                chunk = open_chunk[pending.queue] = _Chunk(pending.queue, [], [])
                out.append(chunk)
            take = pending.bodies[at:at + limit - len(chunk.bodies)]
            chunk.bodies += take
            chunk.parts.append((pending, len(take)))
            at += len(take)
    return out


class Outbox:
    """Messages waiting to be published with ``publish(queue, bodies)``, which returns a
    future settled once the broker has them; safe to share between threads.

    The publishing thread does not wait for the broker: it starts each publish
    and goes on, and a publish's future settles the calls it carried. Where a
    broker answers later (AMQP confirms), sending and confirming overlap.
    Calls reach the thread through a SimpleQueue, not a shared lock, so a
    producer in a tight loop cannot starve it.
    """

    def __init__(self, publish: Callable[[str, list[bytes]], Future[None]]) -> None:
        self._publish = publish
        self._inbox: SimpleQueue[_Pending | _Chunk] = SimpleQueue()  # new calls, and publishes to try again
        self._cond = threading.Condition()  # guards what follows; waited on for room and for flush
        self._count = 0  # messages put and not settled yet
        self._bytes = 0
        self._failed: list[NotConfirmed] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        _open.add(self)

    def put(self, queue: str, ids: list[str], bodies: list[bytes], wait: bool = False) -> None:
        """Queue ``bodies`` for publishing; with ``wait``, return once the broker confirmed them.

        Raises NotConfirmed for these messages (``wait``) or for earlier ones that failed.
        """
        size = sum(map(len, bodies))
        pending = _Pending(queue, ids, bodies, size, wait, left=len(bodies))
        with self._cond:
            self._raise_failed()
            if self._closed:
                raise RuntimeError("the client is closed")
            # An outbox already holding something waits for room; a put larger than the bound goes alone.
            while self._count and (self._count + len(bodies) > MAX_PENDING
                                   or self._bytes + size > MAX_PENDING_BYTES):
                self._cond.wait()
            self._count += len(bodies)
            self._bytes += size
            self._inbox.put(pending)
            if self._thread is None:
                self._start()
        if wait:
            pending.done.result()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every message put so far is confirmed; raise NotConfirmed for any that were not."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._count:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"{self._count} message(s) still not confirmed after {timeout:g}s")
                self._cond.wait(left)
            self._raise_failed()

    def close(self, timeout: float | None = None) -> None:
        """Flush, then refuse further messages."""
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closed = True
            _open.discard(self)

    def _start(self) -> None:
        """Start the publishing thread (lock held)."""
        self._thread = threading.Thread(target=self._run, name="octobot-outbox", daemon=True)
        self._thread.start()

    def _raise_failed(self) -> None:
        """Raise the failures no caller has seen yet, as one NotConfirmed (lock held)."""
        if self._failed:
            failed, self._failed = self._failed, []
            raise NotConfirmed([i for f in failed for i in f.ids], failed[0].reason)

    def _run(self) -> None:
        later: list[_Chunk] = []  # publishes to try again once their pause is over
        while True:
            now = time.monotonic()
            until = min((c.not_before for c in later), default=now + IDLE_EXIT)
            try:
                first = self._inbox.get(timeout=max(0.0, until - now))
            except Empty:
                first = None
            calls = [] if first is None else [first]
            while not self._inbox.empty() and len(calls) < MAX_PENDING:
                calls.append(self._inbox.get())
            later += [c for c in calls if isinstance(c, _Chunk)]
            now = time.monotonic()
            due = [c for c in later if c.not_before <= now]
            later = [c for c in later if c.not_before > now]
            for chunk in due + chunks([c for c in calls if isinstance(c, _Pending)]):
                self._send(chunk)
            if not calls and not later:
                with self._cond:
                    if self._inbox.empty() and not self._count:
                        self._thread = None
                        return

    def _send(self, chunk: _Chunk) -> None:
        try:
            future = self._publish(chunk.queue, chunk.bodies)
        except Exception as exc:
            self._sent(chunk, exc)
        else:
            future.add_done_callback(lambda done: self._sent(chunk, done.exception()))

    def _sent(self, chunk: _Chunk, error: BaseException | None) -> None:
        """A publish ended (on whichever thread the broker's answer came): settle its calls,
        or have it tried again a little later if the broker went away."""
        if isinstance(error, BrokerUnavailable) and chunk.tries < len(RETRY_PAUSES):
            chunk.not_before = time.monotonic() + RETRY_PAUSES[chunk.tries]
            chunk.tries += 1
            self._inbox.put(chunk)  # the thread is running: the chunk's messages are not settled
            return
        reason = "" if error is None else (" ".join(str(error).split()) or type(error).__name__)
        with self._cond:
            for pending, n in chunk.parts:
                pending.left -= n
                pending.reason = pending.reason or reason
                if pending.left:
                    continue
                self._count -= len(pending.bodies)
                self._bytes -= pending.size
                if not pending.reason:
                    pending.done.set_result(None)
                elif pending.waited:
                    pending.done.set_exception(NotConfirmed(pending.ids, pending.reason))
                else:
                    self._failed.append(NotConfirmed(pending.ids, pending.reason))
            self._cond.notify_all()
        if reason:
            log.warning("publishing to queue %s: %s", chunk.queue, reason)


_open: weakref.WeakSet[Outbox] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """A producer that exits without close() still sends what it enqueued, or says what it did not."""
    for outbox in list(_open):
        try:
            outbox.flush(EXIT_FLUSH)
        except Exception as exc:
            log.error("at exit: %s", exc)
