"""Cluster statistics: node samples kept as 1 s buckets per (queue, node) for
15 minutes, merged on demand into per-queue, per-node or per-label reports.
Percentiles come from merged histograms, never from averaged percentiles."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from octobot.histogram import Histogram
from octobot.v1 import node_pb2, stats_pb2

RETENTION = 15 * 60
# A node's gauges count only while fresh; a silent node holds nothing in flight.
GAUGE_TTL = 5.0
_COUNTS = ("succeeded", "failed", "retried", "dead_lettered", "rejected")
_WINDOW = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)$")
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_window(text: str) -> float:
    """'10s', '1m', '15m' -> seconds; ValueError for anything else or beyond retention."""
    m = _WINDOW.match(text or "1m")
    if not m:
        raise ValueError(f"bad window {text!r}: use a number and s, m or h, like 10s or 15m")
    seconds = float(m[1]) * _UNITS[m[2]]
    if not 0 < seconds <= RETENTION:
        raise ValueError(f"window {text!r} is outside 1s..15m")
    return seconds


@dataclass(slots=True)
class _Bucket:
    counts: list[int] = field(default_factory=lambda: [0] * len(_COUNTS))
    run: Histogram = field(default_factory=Histogram)
    e2e: Histogram = field(default_factory=Histogram)


@dataclass(slots=True)
class _Gauges:
    in_flight: int
    busy_slots: int
    backlog: int
    at: float


class ClusterStats:
    """In-memory time series of node samples."""

    def __init__(self) -> None:
        # (queue, node_id) -> second -> bucket
        self._series: dict[tuple[str, str], dict[int, _Bucket]] = defaultdict(dict)
        self._gauges: dict[tuple[str, str], _Gauges] = {}

    def ingest(self, node_id: str, report: node_pb2.StatsReport) -> None:
        now = time.time()
        second = int(report.at.ToNanoseconds() / 1e9) if report.HasField("at") else int(now)
        for s in report.samples:
            key = (s.queue, node_id)
            bucket = self._series[key].setdefault(second, _Bucket())
            for i, name in enumerate(_COUNTS):
                bucket.counts[i] += getattr(s, name)
            bucket.run.merge(Histogram.from_proto(s.run_time))
            bucket.e2e.merge(Histogram.from_proto(s.end_to_end))
            self._gauges[key] = _Gauges(s.in_flight, s.busy_slots, s.backlog, now)
        self._prune(now)

    def _prune(self, now: float) -> None:
        oldest = int(now - RETENTION)
        for key, buckets in list(self._series.items()):
            for second in [s for s in buckets if s < oldest]:
                del buckets[second]
            if not buckets:
                del self._series[key]
                self._gauges.pop(key, None)

    def queues(self) -> set[str]:
        return {q for q, _ in self._series}

    def nodes(self) -> set[str]:
        return {n for _, n in self._series}

    def report(self, window: float, *, queue: str | None = None, node: str | None = None,
               group_of: Callable[[str], str] | None = None) -> list[stats_pb2.QueueReport]:
        """One row per queue (and per group, when ``group_of`` maps node ids to groups)."""
        now = time.time()
        since = now - window
        rows: dict[tuple[str, str], tuple[_Bucket, list[int]]] = {}
        # Rates divide by the time actually covered, so a young cluster's rate is not diluted.
        earliest = now
        for (q, n), buckets in self._series.items():
            if (queue and q != queue) or (node and n != node):
                continue
            group = group_of(n) if group_of else ""
            total, gauges = rows.setdefault((q, group), (_Bucket(), [0, 0, 0]))
            for second, b in buckets.items():
                if second >= since:
                    earliest = min(earliest, second)
                    total.counts = [a + c for a, c in zip(total.counts, b.counts)]
                    total.run.merge(b.run)
                    total.e2e.merge(b.e2e)
            g = self._gauges.get((q, n))
            if g and now - g.at <= GAUGE_TTL:
                gauges[0] += g.in_flight
                gauges[1] += g.busy_slots
                # Nodes sharing a queue see the same broker backlog.
                gauges[2] = max(gauges[2], g.backlog)
        covered = max(1.0, min(window, now - earliest))
        return [_to_report(q, group, total, gauges, covered) for (q, group), (total, gauges) in sorted(rows.items())]


def _to_report(queue: str, group: str, b: _Bucket, gauges: list[int], seconds: float) -> stats_pb2.QueueReport:
    counts: Mapping[str, int] = dict(zip(_COUNTS, b.counts))
    return stats_pb2.QueueReport(
        queue=queue, group=group, **counts,
        rate=(counts["succeeded"] + counts["failed"]) / seconds,
        in_flight=gauges[0], busy_slots=gauges[1], backlog=gauges[2],
        run_p50=b.run.quantile(0.5), run_p90=b.run.quantile(0.9), run_p99=b.run.quantile(0.99),
        run_p999=b.run.quantile(0.999), e2e_p50=b.e2e.quantile(0.5), e2e_p90=b.e2e.quantile(0.9),
        e2e_p99=b.e2e.quantile(0.99), e2e_p999=b.e2e.quantile(0.999))
