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

from octobot.coordinator.stats.bucket_sums import sum_buckets
from octobot.outcomes import OUTCOMES
from octobot.histogram import DEFAULT_ACCURACY, Histogram
from octobot.internal.v1 import sample_columns_pb2
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

    def add_compact(self, values: Iterable[bytes]) -> None:
        """Merge compact buckets (serialized QueueSamples), all in one parse."""
        parts = list(values)
        if not parts:
            return
        counts, backlog, kinds = _sums(parts)
        for name, count in zip(OUTCOMES, counts):
            setattr(self, name, getattr(self, name) + count)
        self.backlog = max(self.backlog, backlog)
        for h, kind in zip((self.run, self.wait, self.e2e), kinds):
            if kind is not None:
                indexes, bucket_counts, zeros, total = kind
                buckets = h.buckets
                get = buckets.get
                for index, count in zip(indexes, bucket_counts):
                    buckets[index] = get(index, 0) + count
                h.zero_count += zeros
                h.count += zeros + sum(bucket_counts)
                h.sum += total

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
        return {name: getattr(self, name) for name in OUTCOMES}


def merged_compact(values: Iterable[bytes]) -> Bucket:
    bucket = Bucket()
    bucket.add_compact(values)
    return bucket


def merged_bytes(parts: list[bytes]) -> bytes:
    """Compact buckets merged into one compact bucket, straight from their
    columns (no Bucket between): what sealing a node's minute needs."""
    counts, backlog, kinds = _sums(parts)
    histograms = [stats_pb2.Histogram(relative_accuracy=DEFAULT_ACCURACY, indexes=k[0], counts=k[1], zero_count=k[2],
                                      sum=k[3]) if k is not None else stats_pb2.Histogram() for k in kinds]
    return stats_pb2.QueueSample(**dict(zip(OUTCOMES, counts)), backlog=backlog, run_time=histograms[0],
                                 wait_time=histograms[1], end_to_end=histograms[2]).SerializeToString()


# Per kind of histogram: distinct bucket indexes ascending, their counts, zeros and the sum of values.
KindSums = tuple[list[int], list[int], int, float]


def _sums(parts: list[bytes]) -> tuple[list[int], int, list[KindSums | None]]:
    """What compact buckets add up to, in one parse: the OUTCOMES counts, the largest
    backlog, and each kind of histogram (run, wait, end to end) summed."""
    cols = sample_columns_pb2.SampleColumns.FromString(b"".join(parts))
    counts = [sum(getattr(cols, name)) for name in OUTCOMES]
    backlog = -1
    if cols.backlog:
        # A backlog of 0 is absent on the wire; -1 (unknown) is not.
        backlog = max(cols.backlog) if len(cols.backlog) == len(parts) else max(0, max(cols.backlog))
    kinds: list[KindSums | None] = []
    for c in (cols.run_time, cols.wait_time, cols.end_to_end):
        if c.relative_accuracy and (np.array(c.relative_accuracy) != DEFAULT_ACCURACY).any():
            kinds.append(None)  # only a node built otherwise sends another accuracy: it cannot be merged
        else:
            indexes, bucket_counts = sum_buckets(c.indexes, c.counts)
            kinds.append((indexes, bucket_counts, sum(c.zero_count), sum(c.sum)))
    return counts, backlog, kinds


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
