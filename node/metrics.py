"""Per-queue counters and latency histograms, swapped out once per interval
and sent to the coordinator as a QueueSample."""

from __future__ import annotations

import threading

from octobot.histogram import Histogram
from octobot.v1 import stats_pb2


class QueueMetrics:
    """Thread-safe accumulator for one queue's current interval."""

    def __init__(self, queue: str, enabled: bool = True) -> None:
        self.queue = queue
        # Off only to measure what recording costs (bench/throughput.py); gauges still flow.
        self.enabled = enabled
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.succeeded = self.failed = self.retried = self.dead_lettered = self.rejected = 0
        self.run = Histogram()
        self.wait = Histogram()
        self.e2e = Histogram()

    def finished(self, ok: bool, enqueued_at: float, started: float, ended: float) -> None:
        """One task ran from ``started`` to ``ended`` (wall clock); ``enqueued_at`` 0 if unknown."""
        if not self.enabled:
            return
        with self._lock:
            if ok:
                self.succeeded += 1
            else:
                self.failed += 1
            self.run.record(ended - started)
            if enqueued_at:
                self.wait.record(started - enqueued_at)
                self.e2e.record(ended - enqueued_at)

    def count(self, *, retried: int = 0, dead_lettered: int = 0, rejected: int = 0) -> None:
        with self._lock:
            self.retried += retried
            self.dead_lettered += dead_lettered
            self.rejected += rejected

    def take(self, in_flight: int, busy_slots: int, backlog: int) -> stats_pb2.QueueSample:
        """The interval's sample, with the given gauges; starts a new interval."""
        with self._lock:
            sample = stats_pb2.QueueSample(
                queue=self.queue, succeeded=self.succeeded, failed=self.failed, retried=self.retried,
                dead_lettered=self.dead_lettered, rejected=self.rejected, in_flight=in_flight,
                busy_slots=busy_slots, backlog=backlog, run_time=self.run.to_proto(),
                wait_time=self.wait.to_proto(), end_to_end=self.e2e.to_proto())
            self._reset()
        return sample
