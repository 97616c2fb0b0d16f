"""One time bucket of a stats series: outcome counts, the largest backlog seen
and the three latency histograms, merged from node samples. A closed bucket is
kept as the bytes of a QueueSample (a tenth of the memory of the dicts), and
merged back from them when a query reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

from octobot.coordinator.store import STATS_COUNTS as COUNTS
from octobot.histogram import Histogram
from octobot.v1 import stats_pb2
QUANTILES = [0.5, 0.9, 0.99, 0.999]


@dataclass(slots=True)
class Bucket:
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    rejected: int = 0
    backlog: int = -1
    run: Histogram = field(default_factory=Histogram)
    wait: Histogram = field(default_factory=Histogram)
    e2e: Histogram = field(default_factory=Histogram)

    def add_sample(self, s: stats_pb2.QueueSample) -> None:
        self.succeeded += s.succeeded
        self.failed += s.failed
        self.retried += s.retried
        self.dead_lettered += s.dead_lettered
        self.rejected += s.rejected
        if s.backlog > self.backlog:
            self.backlog = s.backlog
        self.run.merge_proto(s.run_time)
        self.wait.merge_proto(s.wait_time)
        self.e2e.merge_proto(s.end_to_end)

    def add(self, value: Bucket | bytes) -> None:
        """Merge another bucket, live or compacted."""
        if isinstance(value, bytes):
            self.add_sample(stats_pb2.QueueSample.FromString(value))
            return
        self.succeeded += value.succeeded
        self.failed += value.failed
        self.retried += value.retried
        self.dead_lettered += value.dead_lettered
        self.rejected += value.rejected
        self.backlog = max(self.backlog, value.backlog)
        self.run.merge(value.run)
        self.wait.merge(value.wait)
        self.e2e.merge(value.e2e)

    def to_sample(self) -> stats_pb2.QueueSample:
        return stats_pb2.QueueSample(
            succeeded=self.succeeded, failed=self.failed, retried=self.retried, dead_lettered=self.dead_lettered,
            rejected=self.rejected, backlog=self.backlog, run_time=self.run.to_proto(),
            wait_time=self.wait.to_proto(), end_to_end=self.e2e.to_proto())

    def compact(self) -> bytes:
        return self.to_sample().SerializeToString()

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTS}


def add_into(slots: dict[int, Bucket | bytes], key: int, sample: stats_pb2.QueueSample, closed: bool) -> None:
    """Add a sample to the bucket at ``key``; a closed bucket stays compact."""
    value = slots.get(key)
    if isinstance(value, Bucket):
        value.add_sample(sample)
        return
    bucket = Bucket()
    if value is not None:
        bucket.add(value)
    bucket.add_sample(sample)
    slots[key] = bucket.compact() if closed else bucket


def percentiles(h: Histogram) -> stats_pb2.Percentiles:
    p50, p90, p99, p999 = h.quantiles(QUANTILES)
    return stats_pb2.Percentiles(p50=p50, p90=p90, p99=p99, p999=p999, mean=h.sum / h.count if h.count else 0.0,
                                 count=h.count)
