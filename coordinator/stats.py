"""Cluster statistics: node samples merged at ingest into series per queue,
per (queue, node label value) and per (queue, node). Views are merges of
those series' histograms, never averages of percentiles.

The queue and label series are flushed every few seconds as 1 minute
rollups to the store; the store answers for time older than 15 minutes and
for time before this coordinator started. A sample older than what was
flushed (a node's buffer, sent after an outage) is added to its minute in
the store as a delta, so it lands where it belongs.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from octobot.coordinator.stats_bucket import COUNTS, Bucket
from octobot.coordinator.stats_series import RETENTION, NodeSeries, Series
from octobot.coordinator.store import StatsMinute
from octobot.v1 import node_pb2, stats_pb2

# Seconds a sample may take to arrive before its second closes.
GRACE = 3
# A node's gauges count only while fresh; a silent node holds nothing in flight.
GAUGE_TTL = 5.0
# The dimension of per-node series (a node label called "node" is ignored).
NODE = "node"
# Series handled between yields to the event loop, so queries never wait long.
CHUNK = 2000

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

Key = tuple[str, str]  # (queue, value) within one dimension


def parse_duration(text: str, what: str = "window") -> int:
    """'10s', '1m', '15m', '24h', '7d' -> whole seconds; ValueError otherwise."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"bad {what} {text!r}: use a number and s, m, h or d, like 10s, 15m or 24h")
    seconds = float(m[1]) * _UNITS[m[2]]
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"bad {what} {text!r}: whole seconds, at least 1s")
    return int(seconds)


@dataclass(slots=True)
class Gauge:
    in_flight: int
    busy_slots: int
    backlog: int
    second: int  # report time, so a replayed old report never overwrites a newer one
    arrived: float


@dataclass(slots=True)
class GaugeTotal:
    in_flight: int = 0
    busy_slots: int = 0
    backlog: int = -1
    nodes: int = 0


def to_stored(queue: str, dim: str, value: str, minute: int, b: Bucket) -> StatsMinute:
    return StatsMinute(queue=queue, dim=dim, value=value, minute=minute, backlog=b.backlog, **b.counts(),
                       run_time=b.run.to_proto().SerializeToString(),
                       wait_time=b.wait.to_proto().SerializeToString(),
                       end_to_end=b.e2e.to_proto().SerializeToString())


def from_stored(row: StatsMinute, into: Bucket) -> None:
    into.add_sample(stats_pb2.QueueSample(
        succeeded=row.succeeded, failed=row.failed, retried=row.retried, dead_lettered=row.dead_lettered,
        rejected=row.rejected, backlog=row.backlog,
        run_time=stats_pb2.Histogram.FromString(row.run_time),
        wait_time=stats_pb2.Histogram.FromString(row.wait_time),
        end_to_end=stats_pb2.Histogram.FromString(row.end_to_end)))


class ClusterStats:
    """Every series in memory, and what still has to go to the store."""

    def __init__(self, now: float | None = None) -> None:
        self.started = int(time.time() if now is None else now)
        self.closed_until = self.started  # seconds below this are closed
        # Seconds below flushing_until went to the store or wait in _pending; below
        # flushed_until they are committed there, and queries read them from it.
        self.flushing_until = self.flushed_until = self.started
        self.epoch = self.started  # the earliest second any data is known for
        # dim ("" for queue totals, or a label key) -> (queue, label value) -> series
        self._dims: dict[str, dict[Key, Series]] = {"": {}}
        self._nodes: dict[Key, NodeSeries] = {}
        self._pending: dict[tuple[str, str, str, int], Bucket] = {}
        self._gauges: dict[Key, Gauge] = {}
        self.gauge_totals: dict[tuple[str, str, str], GaugeTotal] = {}
        self._node_dims: dict[str, tuple[tuple[str, str], ...]] = {}
        # Since this coordinator started, for Prometheus: counts per (queue, node)
        # and histograms per (dim, queue, value).
        self.totals: dict[Key, list[int]] = {}
        self.cumulative: dict[tuple[str, str, str], Bucket] = {}
        self.samples = 0

    # -- ingest -------------------------------------------------------------

    def ingest(self, node_id: str, labels: dict[str, str], report: node_pb2.StatsReport,
               now: float | None = None) -> None:
        now = time.time() if now is None else now
        newest = int(now)
        # A node whose clock runs ahead must not write into the future.
        second = min(report.at.seconds if report.HasField("at") else newest, newest)
        dims = self._node_dims.get(node_id)
        if dims is None or dict(dims) != labels:
            dims = self._node_dims[node_id] = tuple((k, v) for k, v in sorted(labels.items()) if k != NODE)
        closed = self.closed_until
        in_memory = second >= newest - RETENTION
        late = second < self.flushing_until
        self.epoch = min(self.epoch, second)
        self.samples += len(report.samples)
        for s in report.samples:
            queue = s.queue
            totals = self.totals.get((queue, node_id))
            if totals is None:
                totals = self.totals[(queue, node_id)] = [0] * len(COUNTS)
            totals[0] += s.succeeded
            totals[1] += s.failed
            totals[2] += s.retried
            totals[3] += s.dead_lettered
            totals[4] += s.rejected
            gauge = self._gauges.get((queue, node_id))
            if gauge is None or second >= gauge.second:
                self._gauges[(queue, node_id)] = Gauge(s.in_flight, s.busy_slots, s.backlog, second, now)
            if in_memory:
                self._series("", queue, "").add(second, s, closed)
                for dim, value in dims:
                    self._series(dim, queue, value).add(second, s, closed)
                node = self._nodes.get((queue, node_id))
                if node is None:
                    node = self._nodes[(queue, node_id)] = NodeSeries()
                node.add(second, s, closed)
            if late:
                minute = second // 60
                for dim, value in (("", ""), *dims):
                    pending = self._pending.get((queue, dim, value, minute))
                    if pending is None:
                        pending = self._pending[(queue, dim, value, minute)] = Bucket()
                    pending.add_sample(s)

    def _series(self, dim: str, queue: str, value: str) -> Series:
        series = self._dims.get(dim)
        if series is None:
            series = self._dims[dim] = {}
        s = series.get((queue, value))
        if s is None:
            s = series[(queue, value)] = Series()
        return s

    # -- upkeep -------------------------------------------------------------

    async def maintain(self, every: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every)
            await self.tick(time.time())

    async def tick(self, now: float) -> None:
        """Close the seconds past the grace period, forget old time, total the gauges."""
        newest = int(now)
        start, end = self.closed_until, max(self.closed_until, newest - GRACE)
        self.closed_until = end
        for dim, series in self._dims.items():
            for (queue, value), s in list(series.items()):
                for b in s.close(start, end):
                    total = self.cumulative.get((dim, queue, value))
                    if total is None:
                        total = self.cumulative[(dim, queue, value)] = Bucket()
                    total.add(b)
                if s.prune(newest - RETENTION):
                    del series[(queue, value)]
        for i, (key, node) in enumerate(list(self._nodes.items())):
            node.close(start, end)
            if node.prune(newest):
                del self._nodes[key]
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)
        await self._total_gauges(now)

    async def _total_gauges(self, now: float) -> None:
        """Gauges per (queue, dim, value), and per ("", dim, value) over all queues."""
        totals: dict[tuple[str, str, str], GaugeTotal] = {}
        nodes: dict[tuple[str, str], set[str]] = {}
        for i, ((queue, node_id), g) in enumerate(list(self._gauges.items())):
            if now - g.arrived > GAUGE_TTL:
                if now - g.arrived > RETENTION:
                    del self._gauges[(queue, node_id)]
                continue
            for dim, value in (("", ""), (NODE, node_id), *self._node_dims.get(node_id, ())):
                t = totals.get((queue, dim, value))
                if t is None:
                    t = totals[(queue, dim, value)] = GaugeTotal()
                    nodes.setdefault((dim, value), set())
                t.in_flight += g.in_flight
                t.busy_slots += g.busy_slots
                # Nodes sharing a queue see the same broker backlog.
                t.backlog = max(t.backlog, g.backlog)
                t.nodes += 1
                nodes[(dim, value)].add(node_id)
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)
        for (_, dim, value), t in list(totals.items()):
            every = totals.get(("", dim, value))
            if every is None:
                every = totals[("", dim, value)] = GaugeTotal(nodes=len(nodes[(dim, value)]))
            every.in_flight += t.in_flight
            every.busy_slots += t.busy_slots
            if t.backlog >= 0:
                every.backlog = max(every.backlog, 0) + t.backlog
        self.gauge_totals = totals

    # -- the store ------------------------------------------------------------

    def take_deltas(self, until: int | None = None) -> tuple[list[StatsMinute], int]:
        """What the store lacks: the queue and label series from the last flush up
        to ``until`` (default: the closed seconds), and late samples before that.
        Call ``committed(until)`` once the store has them, ``requeue`` if not."""
        until = self.closed_until if until is None else until
        start = self.flushing_until
        deltas, self._pending = self._pending, {}
        for dim, series in self._dims.items():
            for (queue, value), s in series.items():
                for minute in range(start // 60, (until + 59) // 60):
                    b = Bucket()
                    s.collect(max(start, minute * 60), min(until, minute * 60 + 60), self.closed_until, b)
                    if b.finished or b.retried or b.dead_lettered or b.rejected or b.backlog >= 0:
                        deltas.setdefault((queue, dim, value, minute), Bucket()).add(b)
        self.flushing_until = max(start, until)
        return [to_stored(q, dim, v, m, b) for (q, dim, v, m), b in deltas.items()], self.flushing_until

    def committed(self, until: int) -> None:
        self.flushed_until = max(self.flushed_until, until)

    def requeue(self, deltas: Iterable[StatsMinute]) -> None:
        """Deltas the store could not take go out with the next flush."""
        for d in deltas:
            from_stored(d, self._pending.setdefault((d.queue, d.dim, d.value, d.minute), Bucket()))

    # -- queries --------------------------------------------------------------

    @staticmethod
    def beyond_memory(start: int) -> bool:
        """Whether [start, now) reaches past the 15 minutes memory keeps."""
        return start < int(time.time()) - RETENTION

    def needs_store(self, start: int) -> bool:
        """Whether [start, now) reaches before what memory holds completely."""
        return start < self.started or self.beyond_memory(start)

    def series_keys(self, dim: str) -> list[Key]:
        return list(self._nodes if dim == NODE else self._dims.get(dim, {}))

    def steps(self, dim: str, first: int, step: int, count: int, end: int, *, queue: str | None = None,
              stored: list[StatsMinute] | None = None, flushed: int = 0) -> tuple[dict[Key, list[Bucket]], int]:
        """Per (queue, value) of one dimension, a bucket for each of ``count`` steps
        from ``first`` (the last one ends at ``end``), and the earliest second data
        is known for. ``stored`` are that dimension's rollups up to the ``flushed``
        second; memory answers from there on."""
        out: dict[Key, list[Bucket]] = {}
        mem_start = first if stored is None else max(first, flushed)
        known = self.epoch
        source: dict[Key, Series] | dict[Key, NodeSeries] = self._nodes if dim == NODE else self._dims.get(dim, {})
        for key, series in source.items():
            if queue is None or key[0] == queue:
                buckets = out[key] = [Bucket() for _ in range(count)]
                for i, b in enumerate(buckets):
                    a, z = max(first + i * step, mem_start), min(first + (i + 1) * step, end)
                    if a < z:
                        series.collect(a, z, self.closed_until, b)
        for row in stored or ():
            # The minute holding ``first`` counts whole: the store knows no finer.
            i = max(0, (row.minute * 60 - first) // step)
            if i < count:
                if (row.queue, row.value) not in out:
                    out[(row.queue, row.value)] = [Bucket() for _ in range(count)]
                from_stored(row, out[(row.queue, row.value)][i])
                known = min(known, row.minute * 60)
        return out, known

    def finished_per_second(self, start: int, end: int) -> dict[str, list[int]]:
        """Per queue, tasks finished in each second of [start, end), for sparklines."""
        return {queue: s.finished_between(start, end) for (queue, _), s in self._dims[""].items()}

    def since_start(self, dim: str) -> dict[Key, Bucket]:
        """Per (queue, value) of a dimension, everything since this coordinator
        started (Prometheus wants cumulative counts)."""
        out: dict[Key, Bucket] = {}
        for (d, queue, value), total in self.cumulative.items():
            if d == dim:
                out[(queue, value)] = b = Bucket()
                b.add(total)
        for key, series in self._dims.get(dim, {}).items():
            series.collect(self.closed_until, int(time.time()) + 1, self.closed_until, out.setdefault(key, Bucket()))
        return out

    def gauges(self, queue: str, dim: str, value: str) -> GaugeTotal:
        return self.gauge_totals.get((queue, dim, value)) or GaugeTotal()
