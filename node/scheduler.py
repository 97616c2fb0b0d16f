"""Where a slot is granted: the node's slot budget shared among its queues.

Without contention (no budget, or the queues together want no more slots
than it) every queue runs at its own concurrency. Under contention, queues
with waiting work share the budget in proportion to their priority, by
water-filling: a queue whose concurrency is below its share keeps only what it
can use and leaves the rest to the others. So priorities 8 and 2 get 4:1 of
the slots, and a queue with waiting work always gets at least one.

    scheduler = SlotScheduler(budget=10)
    scheduler.join(runner, priority=8, concurrency=10, wake=runner.wake)
    granted = scheduler.acquire(runner, 6)   # before fetching
    scheduler.release(runner, 1)             # a task finished

Queues are keyed by their runner, so a queue restarted on a new broker
binding is a new participant while the old runner drains.

A queue not known to have waiting work (its last fetch came back empty) may
still take one free slot to look for work, so it never starves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class _Queue:
    priority: int
    concurrency: int
    wake: Callable[[], None]
    held: int = 0
    hungry: bool = True


class SlotScheduler:
    def __init__(self, budget: int | None) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._queues: dict[Hashable, _Queue] = {}

    @property
    def limited(self) -> bool:
        return self.budget is not None

    def join(self, key: Hashable, priority: int, concurrency: int, wake: Callable[[], None]) -> None:
        with self._lock:
            self._queues[key] = _Queue(priority, concurrency, wake)

    def update(self, key: Hashable, priority: int, concurrency: int) -> None:
        with self._lock:
            q = self._queues[key]
            q.priority, q.concurrency = priority, concurrency
        self._wake_others(key)

    def leave(self, key: Hashable) -> None:
        with self._lock:
            self._queues.pop(key, None)
        self._wake_others(key)

    def acquire(self, key: Hashable, want: int) -> int:
        """How many of ``want`` slots the queue may fill now (0 to ``want``)."""
        if self.budget is None or want <= 0:
            return max(0, want)
        with self._lock:
            q = self._queues[key]
            free = self.budget - sum(x.held for x in self._queues.values())
            limit = self._shares().get(key, 0) if q.hungry else q.held + 1
            granted = max(0, min(want, free, limit - q.held))
            q.held += granted
            return granted

    def release(self, key: Hashable, count: int, *, found_work: bool | None = None) -> None:
        """Give back ``count`` slots; ``found_work`` tells whether the queue's
        last fetch found messages (a queue without waiting work takes no share)."""
        if self.budget is None:
            return
        with self._lock:
            q = self._queues.get(key)
            if q is None:
                return
            q.held = max(0, q.held - count)
            if found_work is not None:
                q.hungry = found_work
        if count:
            self._wake_others(key)

    def _shares(self) -> dict[Hashable, int]:
        assert self.budget is not None
        return shares(self.budget, {n: (q.priority, q.concurrency) for n, q in self._queues.items() if q.hungry})

    def _wake_others(self, key: Hashable) -> None:
        """Slots came free: let other queues' fetchers look again."""
        with self._lock:
            wakes = [q.wake for k, q in self._queues.items() if k is not key]
        for wake in wakes:
            wake()


def shares(budget: int, hungry: Mapping[K, tuple[int, int]]) -> dict[K, int]:
    """Each hungry queue's slots under contention, given its (priority,
    concurrency): proportional to priority, capped by concurrency, at least
    one; leftovers to the largest remainders. They add up to the budget, or
    to one a queue where there are more queues than slots."""
    wanting = dict(hungry)
    out: dict[K, int] = {}
    left = budget
    while wanting:
        weight = sum(priority for priority, _ in wanting.values())
        fits = [n for n, (p, c) in wanting.items() if c <= left * p / weight]
        given = False
        for n in fits:
            concurrency = wanting[n][1]
            if left - concurrency >= len(wanting) - 1:  # the others still get one each
                out[n] = concurrency
                left -= concurrency
                del wanting[n]
                given = True
        if not given:
            break
    if wanting:
        weight = sum(priority for priority, _ in wanting.values())
        exact = {n: left * p / weight for n, (p, _) in wanting.items()}
        floors = {n: int(v) for n, v in exact.items()}
        spare = left - sum(floors.values())
        for n in sorted(exact, key=lambda n: exact[n] - floors[n], reverse=True)[:max(0, spare)]:
            floors[n] += 1
        out.update(floors)
    # At least one each, taken from the largest share (of the lowest priority) while it has more.
    for n in [n for n, share in out.items() if share == 0]:
        out[n] = 1
        donor = max(out, key=lambda d: (out[d], -hungry[d][0]))
        if out[donor] > 1:
            out[donor] -= 1
    return out
