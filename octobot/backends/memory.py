"""An in-memory backend: queues that live in this process, for unit tests and
for tasks that enqueue follow-up work on a standalone node.

    backend = MemoryBackend("emails", "memory://tests")
    backend.publish([b'{"task": "emails.send"}'])
    [delivery] = backend.fetch(1, timeout=1.0)
    backend.ack([delivery])

Every backend opened on the same URL in one process shares its queues, so a
producer and a test's consumers see one broker. It keeps the contract of the
others, at least once included: a fetched message belongs to its consumer
until it is acked, released, retried or dead-lettered, or until
``visibility_timeout`` passes without a touch, when any consumer may take it
again. Nothing outlives the process, so a coordinator refuses queues on it.
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from octobot.backends.base import Backend, DeadLetter, Delivery, decode_dead

_DEAD_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(slots=True)
class _Held:
    """A fetched message and until when its consumer owns it."""

    body: bytes
    deadline: float


@dataclass
class _Queue:
    ready: deque[bytes] = field(default_factory=deque)
    held: dict[int, _Held] = field(default_factory=dict)  # by receipt
    delayed: list[tuple[float, int, bytes]] = field(default_factory=list)  # a heap: (due, order, body)
    dead: list[tuple[str, bytes, float]] = field(default_factory=list)  # (id, record, failed_at), oldest first

    def promote(self, now: float) -> float:
        """Due retries and messages whose owner let them lapse become ready; return when
        the next of either is due (inf if none)."""
        while self.delayed and self.delayed[0][0] <= now:
            self.ready.append(heapq.heappop(self.delayed)[2])
        lapsed = [receipt for receipt, held in self.held.items() if held.deadline <= now]
        for receipt in lapsed:
            self.ready.appendleft(self.held.pop(receipt).body)
        return min([*(due for due, _, _ in self.delayed[:1]), *(held.deadline for held in self.held.values())], default=float("inf"))


class _Broker:
    """The queues of one memory:// URL."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.queues: dict[str, _Queue] = {}
        self.order = itertools.count()


_brokers: dict[str, _Broker] = {}
_brokers_lock = threading.Lock()


def broker_at(url: str) -> _Broker:
    """The process's broker for ``url``, made on first use."""
    with _brokers_lock:
        return _brokers.setdefault(url, _Broker())


class MemoryBackend(Backend):
    """A queue in this process's memory; safe to share between threads."""

    schemes = ("memory",)
    in_process = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._broker = broker_at(self.url)
        with self._broker.changed:
            self._queue = self._broker.queues.setdefault(self.queue, _Queue())

    def _publish(self, bodies: Sequence[bytes]) -> None:
        with self._broker.changed:
            self._queue.ready.extend(bytes(body) for body in bodies)
            self._broker.changed.notify_all()

    def _fetch(self, max_count: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self._broker.changed:
            while True:
                now = time.monotonic()
                next_due = self._queue.promote(now)
                if self._queue.ready or now >= deadline:
                    break
                self._broker.changed.wait(min(deadline, next_due) - now)
            deliveries = []
            while self._queue.ready and len(deliveries) < max_count:
                receipt = next(self._broker.order)
                body = self._queue.ready.popleft()
                self._queue.held[receipt] = _Held(body, now + self.visibility_timeout)
                deliveries.append(Delivery(body, receipt))
            return deliveries

    def _settle(self, deliveries: Sequence[Delivery]) -> list[bytes]:
        """Take the deliveries off their consumer (lock held); a lapsed one is already gone."""
        return [held.body for d in deliveries if (held := self._queue.held.pop(d.receipt, None)) is not None]

    def _ack(self, deliveries: Sequence[Delivery]) -> None:
        with self._broker.changed:
            self._settle(deliveries)

    def _release(self, deliveries: Sequence[Delivery]) -> None:
        with self._broker.changed:
            self._queue.ready.extendleft(reversed(self._settle(deliveries)))
            self._broker.changed.notify_all()

    def _retry(self, delivery: Delivery, body: bytes, delay: float) -> None:
        with self._broker.changed:
            self._settle([delivery])
            heapq.heappush(self._queue.delayed, (time.monotonic() + delay, next(self._broker.order), body))
            self._broker.changed.notify_all()

    def _dead_letter(self, delivery: Delivery, record: bytes) -> None:
        with self._broker.changed:
            self._settle([delivery])
            self._queue.dead.append((uuid.uuid4().hex, record, time.time()))

    def _touch(self, deliveries: Sequence[Delivery]) -> None:
        with self._broker.changed:
            for d in deliveries:
                held = self._queue.held.get(d.receipt)
                if held is not None:
                    held.deadline = time.monotonic() + self.visibility_timeout

    def _depth(self) -> int:
        with self._broker.changed:
            self._queue.promote(time.monotonic())
            return len(self._queue.ready)

    def _purge(self) -> int:
        with self._broker.changed:
            purged = len(self._queue.ready)
            self._queue.ready.clear()
            return purged

    def _dead_list(self, limit: int) -> list[DeadLetter]:
        with self._broker.changed:
            return [decode_dead(i, record, at) for i, record, at in self._queue.dead[:limit]]

    def _dead_retry(self, ids: Sequence[str] | None) -> int:
        bad = [i for i in ids or () if not _DEAD_ID.fullmatch(i)]
        if bad:
            raise ValueError(f"not dead-letter ids: {', '.join(sorted(bad))}")
        wanted = None if ids is None else set(ids)
        with self._broker.changed:
            kept, retried = [], 0
            for entry in self._queue.dead:
                letter = decode_dead(*entry)
                if letter.retriable and (wanted is None or letter.id in wanted):
                    self._queue.ready.append(letter.revived())
                    retried += 1
                else:
                    kept.append(entry)
            self._queue.dead = kept
            self._broker.changed.notify_all()
            return retried

    def _dead_purge(self) -> int:
        with self._broker.changed:
            purged = len(self._queue.dead)
            self._queue.dead.clear()
            return purged
