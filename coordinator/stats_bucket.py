"""One time bucket of a stats series: outcome counts, the largest backlog seen
and the three latency histograms.

Buckets are kept compact: the bytes of a QueueSample, or several laid end to
end (adding a sample to a compact bucket is a concatenation). Merging reads
any number of them at once as a SampleColumns, whose fields hold every
sample's values, and sums the histogram buckets with numpy: reading a
protobuf field from Python costs far more than adding it up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from octobot.coordinator.bucket_sums import sum_buckets
from octobot.coordinator.store import STATS_COUNTS as COUNTS
from octobot.histogram import DEFAULT_ACCURACY, Histogram
from octobot.v1 import sample_columns_pb2, stats_pb2

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

    def add_compact(self, values: Iterable[bytes]) -> None:
        """Merge compact buckets (serialized QueueSamples), all in one parse."""
        parts = list(values)
        if not parts:
            return
        cols = sample_columns_pb2.SampleColumns.FromString(b"".join(parts))
        self.succeeded += sum(cols.succeeded)
        self.failed += sum(cols.failed)
        self.retried += sum(cols.retried)
        self.dead_lettered += sum(cols.dead_lettered)
        self.rejected += sum(cols.rejected)
        if cols.backlog:
            # A backlog of 0 is absent on the wire; -1 (unknown) is not.
            seen = max(cols.backlog) if len(cols.backlog) == len(parts) else max(0, max(cols.backlog))
            self.backlog = max(self.backlog, seen)
        for h, c in ((self.run, cols.run_time), (self.wait, cols.wait_time), (self.e2e, cols.end_to_end)):
            _merge_columns(h, c)

    def add(self, value: Bucket | bytes) -> None:
        """Merge another bucket, live or compact."""
        if isinstance(value, bytes):
            self.add_compact((value,))
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


def merged_compact(values: Iterable[bytes]) -> Bucket:
    bucket = Bucket()
    bucket.add_compact(values)
    return bucket


def _merge_columns(h: Histogram, c: sample_columns_pb2.HistogramColumns) -> None:
    if c.relative_accuracy and (np.array(c.relative_accuracy) != DEFAULT_ACCURACY).any():
        return  # only a node built otherwise sends another accuracy: its latencies cannot be merged
    indexes, counts = sum_buckets(c.indexes, c.counts)
    buckets = h.buckets
    get = buckets.get
    for index, count in zip(indexes, counts):
        buckets[index] = get(index, 0) + count
    zeros = sum(c.zero_count)
    h.zero_count += zeros
    h.count += zeros + sum(counts)
    h.sum += sum(c.sum)


def merged(buckets: list[Bucket]) -> Bucket:
    if len(buckets) == 1:
        return buckets[0]
    total = Bucket()
    for b in buckets:
        total.add(b)
    return total


def percentiles(h: Histogram) -> stats_pb2.Percentiles:
    p50, p90, p99, p999 = h.quantiles(QUANTILES)
    return stats_pb2.Percentiles(p50=p50, p90=p90, p99=p99, p999=p999, mean=h.sum / h.count if h.count else 0.0,
                                 count=h.count)
