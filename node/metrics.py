"""Per-queue counters and latency histograms, swapped out once per interval
and sent to the coordinator as a QueueSample."""

from __future__ import annotations

import logging
import threading
from struct import Struct

import numpy as np

from octobot.histogram import Histogram
from octobot.v1 import stats_pb2


_TASK = Struct("=dddd")
# A producer's clock, or a hand-written message, may say anything: an
# enqueued_at further than this before the task started, or after it (clocks
# drift), is left out of wait and end-to-end times rather than skew them.
MAX_WAIT = 30 * 86400.0
MAX_AHEAD = 300.0
# Missing task names a queue's status lists.
MAX_MISSING_TASKS = 10

log = logging.getLogger("octobot.node")


def plausible(enqueued: np.ndarray, started: np.ndarray) -> np.ndarray:
    """Which tasks' enqueue times can be believed (0 means unknown: not one of them)."""
    return (enqueued > 0) & (started - enqueued <= MAX_WAIT) & (enqueued - started <= MAX_AHEAD)


class QueueMetrics:
    """Thread-safe accumulator for one queue's current interval.

    A finished task costs packing four doubles and one append of their bytes
    (a single C call, so atomic under the GIL: no lock, and no Python objects
    kept alive until the interval ends for the collector to walk); the
    interval's tasks are counted and bucketed together, vectorized, when it
    is taken.
    """

    def __init__(self, queue: str, enabled: bool = True) -> None:
        self.queue = queue
        # Off only to measure what recording costs (bench/throughput.py); gauges still flow.
        self.enabled = enabled
        # succeeded, enqueued_at, started, ended of each task finished since the last take, end to end.
        self._finished = bytearray()
        self._lock = threading.Lock()  # for the rarer outcome counters
        self.retried = self.dead_lettered = self.rejected = 0
        self._said_implausible = False
        # Since the node started: messages handed back for a task missing here, and the first such tasks.
        self.handed_back_count = 0
        self.missing_tasks: list[str] = []

    def finished(self, ok: bool, enqueued_at: float, started: float, ended: float) -> None:
        """One task ran from ``started`` to ``ended`` (wall clock); ``enqueued_at`` 0 if unknown."""
        if self.enabled:
            self._finished.extend(_TASK.pack(ok, enqueued_at, started, ended))

    def count(self, *, retried: int = 0, dead_lettered: int = 0, rejected: int = 0) -> None:
        with self._lock:
            self.retried += retried
            self.dead_lettered += dead_lettered
            self.rejected += rejected

    def handed_back(self, task: str) -> bool:
        """Count a message handed back for a task missing here; True the first time for this task."""
        with self._lock:
            self.handed_back_count += 1
            if task in self.missing_tasks or len(self.missing_tasks) >= MAX_MISSING_TASKS:
                return False
            self.missing_tasks.append(task)
            return True

    def take(self, in_flight: int, busy_slots: int, backlog: int) -> stats_pb2.QueueSample:
        """The interval's sample, with the given gauges; starts a new interval."""
        # Only the tasks there now (whole ones: each append adds a task's bytes at
        # once); appends racing with this go to the next interval.
        finished = self._finished
        n = len(finished)
        done = np.frombuffer(finished[:n], np.float64).reshape(-1, 4)
        del finished[:n]
        with self._lock:
            retried, dead_lettered, rejected = self.retried, self.dead_lettered, self.rejected
            self.retried = self.dead_lettered = self.rejected = 0
        run, wait, e2e = Histogram(), Histogram(), Histogram()
        succeeded = implausible = 0
        if len(done):
            ok, enqueued, started, ended = done.T
            succeeded = int(ok.sum())
            run.record_many(ended - started)
            known = plausible(enqueued, started)
            wait.record_many(started[known] - enqueued[known])
            e2e.record_many(ended[known] - enqueued[known])
            implausible = int(np.count_nonzero(enqueued > 0)) - int(np.count_nonzero(known))
            if implausible and not self._said_implausible:
                self._said_implausible = True
                log.warning("queue %s: a message's enqueued_at is more than %d days before or %d s after it "
                            "started; such messages are left out of wait and end-to-end times (counted in "
                            "implausible_times)", self.queue, MAX_WAIT // 86400, MAX_AHEAD)
        return stats_pb2.QueueSample(
            queue=self.queue, succeeded=succeeded, failed=len(done) - succeeded, retried=retried,
            dead_lettered=dead_lettered, rejected=rejected, in_flight=in_flight, busy_slots=busy_slots,
            backlog=backlog, run_time=run.to_proto(), wait_time=wait.to_proto(), end_to_end=e2e.to_proto(),
            implausible_times=implausible)
