"""Mergeable latency histograms with bounded relative error (DDSketch-style).

A value v > 0 falls in bucket ceil(log_gamma(v)), gamma = (1+a)/(1-a); any
quantile read back is within relative error ``a`` of the true one. Buckets add
up, so merging node histograms gives exact cluster percentiles rather than
averages of percentiles.

    >>> h = Histogram(); h.record(0.010); h.record(0.020)
    >>> round(h.quantile(1.0), 3)
    0.02
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from octobot.v1 import stats_pb2

DEFAULT_ACCURACY = 0.01
# Below this (1 ns) values count as zero; keeps indexes bounded.
_MIN_VALUE = 1e-9
# Above this (30 days) values count as this much: an ancient or far-future
# enqueued_at (a producer's clock) must not make absurd buckets and sums.
MAX_VALUE = 30 * 86400.0


class Histogram:
    __slots__ = ("accuracy", "_gamma_log", "buckets", "zero_count", "count", "sum")

    def __init__(self, accuracy: float = DEFAULT_ACCURACY) -> None:
        self.accuracy = accuracy
        self._gamma_log = math.log((1 + accuracy) / (1 - accuracy))
        self.buckets: Counter[int] = Counter()
        self.zero_count = 0
        self.count = 0
        self.sum = 0.0

    def record(self, value: float) -> None:
        self.record_many(np.array([value], dtype=np.float64))

    def record_many(self, values: np.ndarray) -> None:
        """``record`` for each value, vectorized: what a node does once per interval."""
        # A broken clock or timestamp must not break the stats: negative values count as zero.
        values = np.clip(values[np.isfinite(values)], 0.0, MAX_VALUE)
        self.count += len(values)
        self.sum += float(values.sum())
        positive = values[values > _MIN_VALUE]
        self.zero_count += len(values) - len(positive)
        indexes, counts = np.unique(np.ceil(np.log(positive) / self._gamma_log).astype(np.int64),
                                    return_counts=True)
        self.buckets.update(dict(zip(indexes.tolist(), counts.tolist())))

    def index_range(self) -> tuple[int, int]:
        """The lowest and the highest bucket index ``record_many`` makes."""
        low, high = np.ceil(np.log([_MIN_VALUE, MAX_VALUE]) / self._gamma_log).astype(np.int64).tolist()
        return low, high

    def merge(self, other: Histogram) -> None:
        if other.accuracy != self.accuracy:
            raise ValueError("cannot merge histograms of different accuracy")
        self.buckets.update(other.buckets)
        self.zero_count += other.zero_count
        self.count += other.count
        self.sum += other.sum

    def quantile(self, q: float) -> float:
        """The q-quantile (0..1), 0.0 for an empty histogram."""
        return self.quantiles([q])[0]

    def quantiles(self, qs: list[float]) -> list[float]:
        """Several quantiles (ascending), vectorized: a cluster-wide histogram has hundreds of buckets."""
        if self.count == 0 or not self.buckets:
            return [0.0] * len(qs)
        values, counts = self.sorted_buckets()
        ranks = np.asarray(qs, dtype=np.float64) * (self.count - 1)
        # The bucket of a rank is the first whose running count (zeros first) passes it.
        seen = self.zero_count + np.cumsum(counts)
        at = np.minimum(np.searchsorted(seen, ranks, side="right"), len(seen) - 1)
        return np.where(ranks < self.zero_count, 0.0, values[at]).tolist()

    def sorted_buckets(self) -> tuple[np.ndarray, np.ndarray]:
        """Each non-empty bucket's value and count, ascending; zeros not included."""
        indexes = np.fromiter(self.buckets.keys(), dtype=np.int64, count=len(self.buckets))
        counts = np.fromiter(self.buckets.values(), dtype=np.int64, count=len(self.buckets))
        order = np.argsort(indexes)
        # Midpoint of the bucket in relative terms: error <= accuracy.
        scale = 2 / (1 + math.exp(self._gamma_log))
        return scale * np.exp(indexes[order] * self._gamma_log), counts[order]

    def cumulative_counts(self, bounds: Sequence[float]) -> list[int]:
        """Values at or below each bound (the bucket midpoints decide, within
        the accuracy), then all of them: a Prometheus histogram's buckets."""
        values, counts = self.sorted_buckets()
        running = np.concatenate(([0], np.cumsum(counts))) + self.zero_count
        return [*running[np.searchsorted(values, bounds, side="right")].tolist(), self.count]

    def to_proto(self) -> stats_pb2.Histogram:
        indexes = sorted(self.buckets)
        return stats_pb2.Histogram(relative_accuracy=self.accuracy, indexes=indexes,
                                   counts=[self.buckets[i] for i in indexes],
                                   zero_count=self.zero_count, sum=self.sum)

    @classmethod
    def from_proto(cls, msg: stats_pb2.Histogram) -> Histogram:
        h = cls(msg.relative_accuracy or DEFAULT_ACCURACY)
        h.buckets.update(dict(zip(msg.indexes, msg.counts)))
        h.zero_count = msg.zero_count
        h.count = sum(msg.counts) + msg.zero_count
        h.sum = msg.sum
        return h
