"""Cluster statistics: node samples, kept as received until their second
closes (GRACE seconds later), then merged once per (queue, node label set)
into series per queue and per (queue, node label value); each node's own
samples make its per-(queue, node) series. Views are merges of those
series' histograms, never averages of percentiles.

The queue and label series are flushed every few seconds as 1 minute
rollups to the store; the store answers for time older than 15 minutes and
for time before this coordinator started. A sample older than what was
flushed (a node's buffer, sent after an outage) is added to its minute in
the store as a delta, so it lands where it belongs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from octobot.coordinator.lane import Lane
from octobot.coordinator.stats.report_checks import Samples
from octobot.coordinator.stats.bucket import Bucket, merged, merged_compact
from octobot.coordinator.stats.gauges import NODE, Dims, GaugeTotal, Gauges
from octobot.coordinator.stats.series import RETENTION, SEAL_SPREAD, NodeSeries, Series, due
from octobot.coordinator.records import StatsMinute
from octobot.outcomes import SAMPLE_COUNTS
from octobot.v1 import stats_pb2

# Seconds a sample may take to arrive before its second closes.
GRACE = 3
# The label Prometheus histograms are broken down by.
PROMETHEUS_DIM = "dc"
# A sample's SCALARS begin with its counts.
N_COUNTS = len(SAMPLE_COUNTS)
SUCCEEDED, FAILED = SAMPLE_COUNTS.index("succeeded"), SAMPLE_COUNTS.index("failed")
COUNTS_AT = range(N_COUNTS)

Key = tuple[str, str]  # (queue, value) within one dimension


def to_stored(queue: str, dim: str, value: str, minute: int, b: Bucket) -> StatsMinute:
    return StatsMinute(queue=queue, dim=dim, value=value, minute=minute, backlog=b.backlog, **b.counts(),
                       run_time=b.run.to_proto().SerializeToString(),
                       wait_time=b.wait.to_proto().SerializeToString(),
                       end_to_end=b.e2e.to_proto().SerializeToString())


def from_stored(row: StatsMinute) -> bytes:
    """A rollup as a compact bucket."""
    return stats_pb2.QueueSample(
        succeeded=row.succeeded, failed=row.failed, retried=row.retried, dead_lettered=row.dead_lettered,
        rejected=row.rejected, backlog=row.backlog,
        run_time=stats_pb2.Histogram.FromString(row.run_time),
        wait_time=stats_pb2.Histogram.FromString(row.wait_time),
        end_to_end=stats_pb2.Histogram.FromString(row.end_to_end)).SerializeToString()


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
        # The same, by their slot: a second's upkeep visits only the slots due.
        self._node_slots: list[dict[Key, NodeSeries]] = [{} for _ in range(SEAL_SPREAD)]
        # Samples (serialized) of the seconds not closed yet, with their queue and node labels.
        self._inbox: dict[int, list[tuple[str, Dims, bytes, int]]] = {}  # ..., tasks finished
        self._pending: dict[tuple[str, str, str, int], list[bytes]] = {}
        self.gauges = Gauges()
        self._node_dims: dict[str, tuple[tuple[str, str], ...]] = {}
        # Since this coordinator started, for Prometheus: counts per (queue, node),
        # SAMPLE_COUNTS in order, and histograms per (queue, dc).
        self.totals: dict[Key, list[int]] = {}
        self.cumulative: dict[Key, Bucket] = {}
        self.samples = 0
        # Upkeep and merges take turns in it.
        self.lane = Lane()

    def label_keys(self) -> set[str]:
        """The label keys of every node that reported since the start."""
        return {key for dims in self._node_dims.values() for key, _ in dims}

    # -- ingest -------------------------------------------------------------

    def ingest(self, node_id: str, labels: dict[str, str], samples: Samples, now: float | None = None) -> None:
        """Add a checked report's samples (report_checks.check_reports)."""
        now = time.time() if now is None else now
        newest = int(now)
        # A node whose clock runs ahead must not write into the future.
        second = newest if samples.at is None else min(samples.at, newest)
        dims = self._node_dims.get(node_id)
        if dims is None or dict(dims) != labels:
            dims = self._node_dims[node_id] = tuple((k, v) for k, v in sorted(labels.items()) if k != NODE)
        closed = second < self.closed_until
        inbox = self._inbox.setdefault(second, []) if not closed else []
        in_memory = second >= newest - RETENTION
        late = second < self.flushing_until
        self.epoch = min(self.epoch, second)
        self.samples += len(samples.raws)
        gauges = self.gauges
        gauges.seen(node_id, dims, now)
        for queue, raw, values in zip(samples.queues, samples.raws, samples.values):
            in_flight, busy_slots, backlog = values[N_COUNTS:]  # SCALARS: the counts, then the gauges
            finished = values[SUCCEEDED] + values[FAILED]
            totals = self.totals.get((queue, node_id))
            if totals is None:
                self.totals[(queue, node_id)] = values[:N_COUNTS]
            else:  # in place, by index: twenty thousand samples a second come this way
                for i in COUNTS_AT:
                    totals[i] += values[i]
            gauges.set(queue, node_id, dims, in_flight, busy_slots, backlog, second, now)
            if in_memory:
                node = self._nodes.get((queue, node_id))
                if node is None:
                    node = self._nodes[(queue, node_id)] = NodeSeries(
                        self.closed_until - self.closed_until % 60, len(self._nodes))
                    self._node_slots[node.slot][(queue, node_id)] = node
                node.add(second, raw, newest)
            if not closed:
                inbox.append((queue, dims, raw, finished))
            elif in_memory:
                self._add_late(second, queue, dims, raw, finished)
            if late:
                minute = second // 60
                for dim, value in (("", ""), *dims):
                    self._pending.setdefault((queue, dim, value, minute), []).append(raw)

    def _add_late(self, second: int, queue: str, dims: Dims, raw: bytes, finished: int) -> None:
        """A sample of a closed second, added to the queue and label series."""
        for dim, value in (("", ""), *dims):
            self._series(dim, queue, value).add_late(second, raw, finished, self.closed_until)

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
        """Close the seconds past the grace period, forget old time and silent nodes."""
        async with self.lane.turn():
            await self._tick(now)

    async def _tick(self, now: float) -> None:
        newest = int(now)
        start, end = self.closed_until, max(self.closed_until, newest - GRACE)
        pace = self.lane.pace
        for second in range(start, end):
            await self._close(second)
            self.closed_until = second + 1
            # Samples that came in while the second was merged (the merge yields) join it late.
            for queue, dims, raw, finished in self._inbox.pop(second, ()):
                self._add_late(second, queue, dims, raw, finished)
        for dim, series in list(self._dims.items()):
            for key, s in list(series.items()):
                s.close(start, end)
                if s.prune(end - RETENTION):
                    del series[key]
                await pace()
        for slot, nodes in enumerate(self._node_slots):
            if not due(slot, start, end):
                continue
            for key, node in list(nodes.items()):
                node.seal(end)
                if node.prune(newest):
                    del nodes[key], self._nodes[key]
                await pace()
        await self.gauges.expire(now, RETENTION, pace)

    async def _close(self, second: int) -> None:
        """Merge a second's samples once per (queue, label set) of the nodes that
        sent them; those groups make the queue and label series."""
        pace = self.lane.pace
        groups: dict[tuple[str, Dims], list[bytes]] = {}
        for i, (queue, dims, raw, _) in enumerate(self._inbox.pop(second, ())):
            groups.setdefault((queue, dims), []).append(raw)
            if i % 2000 == 1999:
                await pace()
        parts: dict[tuple[str, str, str], list[Bucket]] = {}
        for (queue, dims), raws in groups.items():
            bucket = merged_compact(raws)
            for dim, value in (("", ""), *dims):
                parts.setdefault((dim, queue, value), []).append(bucket)
            await pace()
        for (dim, queue, value), buckets in parts.items():
            bucket = merged(buckets)
            self._series(dim, queue, value).put(second, bucket)
            if dim == PROMETHEUS_DIM:
                total = self.cumulative.get((queue, value))
                if total is None:
                    total = self.cumulative[(queue, value)] = Bucket()
                total.add(bucket)
            await pace()

    # -- the store ------------------------------------------------------------

    async def take_deltas(self) -> tuple[list[StatsMinute], int]:
        """What the store lacks: the queue and label series from the last flush up
        to the closed seconds, and late samples before that. Call
        ``committed(until)`` once the store has them, ``requeue`` if not."""
        async with self.lane.turn():
            return await self._take_deltas()

    async def _take_deltas(self) -> tuple[list[StatsMinute], int]:
        until, start = self.closed_until, self.flushing_until
        parts, self._pending = self._pending, {}
        pace = self.lane.pace
        for dim, series in self._dims.items():
            for (queue, value), s in series.items():
                for minute in range(start // 60, (until + 59) // 60):
                    s.collect(max(start, minute * 60), min(until, minute * 60 + 60),
                              parts.setdefault((queue, dim, value, minute), []))
        self.flushing_until = max(start, until)
        deltas = []
        for (q, dim, v, m), raws in parts.items():
            b = merged_compact(raws)
            if b.finished or b.retried or b.dead_lettered or b.rejected or b.backlog >= 0:
                deltas.append(to_stored(q, dim, v, m, b))
            await pace()
        return deltas, self.flushing_until

    def committed(self, until: int) -> None:
        self.flushed_until = max(self.flushed_until, until)

    def requeue(self, deltas: Iterable[StatsMinute]) -> None:
        """Deltas the store could not take go out with the next flush."""
        for d in deltas:
            self._pending.setdefault((d.queue, d.dim, d.value, d.minute), []).append(from_stored(d))

    # -- queries --------------------------------------------------------------

    def beyond_memory(self, start: int) -> bool:
        """Whether a window from ``start`` to the closed seconds reaches past the 15 minutes memory keeps."""
        return start < self.closed_until - RETENTION

    def needs_store(self, start: int) -> bool:
        """Whether [start, now) reaches before what memory holds completely."""
        return start < self.started or self.beyond_memory(start)

    def series_keys(self, dim: str) -> list[Key]:
        return list(self._nodes if dim == NODE else self._dims.get(dim, {}))

    async def steps(self, dim: str, first: int, step: int, count: int, end: int, *, queue: str | None = None,
                    stored: list[StatsMinute] | None = None, flushed: int = 0) -> tuple[dict[Key, list[Bucket]], int]:
        """Per (queue, value) of one dimension, a bucket for each of ``count`` steps
        from ``first`` (the last one ends at ``end``), and the earliest second data
        is known for. ``stored`` are that dimension's rollups up to the ``flushed``
        second; memory answers from there on."""
        async with self.lane.turn():
            return await self._steps(dim, first, step, count, end, queue, stored, flushed)

    async def _steps(self, dim: str, first: int, step: int, count: int, end: int, queue: str | None,
                     stored: list[StatsMinute] | None, flushed: int) -> tuple[dict[Key, list[Bucket]], int]:
        raws: dict[Key, list[list[bytes]]] = {}
        mem_start = first if stored is None else max(first, flushed)
        known = self.epoch
        source: dict[Key, Series] | dict[Key, NodeSeries] = self._nodes if dim == NODE else self._dims.get(dim, {})
        for key, series in source.items():
            if queue is None or key[0] == queue:
                steps = raws[key] = [[] for _ in range(count)]
                for i, parts in enumerate(steps):
                    a, z = max(first + i * step, mem_start), min(first + (i + 1) * step, end)
                    if a < z:
                        series.collect(a, z, parts)
        for row in stored or ():
            # The minute holding ``first`` counts whole: the store knows no finer.
            i = max(0, (row.minute * 60 - first) // step)
            if i < count:
                if (row.queue, row.value) not in raws:
                    raws[(row.queue, row.value)] = [[] for _ in range(count)]
                raws[(row.queue, row.value)][i].append(from_stored(row))
                known = min(known, row.minute * 60)
        # Merging is the costly part of a query: let the loop breathe between series.
        merged_steps: dict[Key, list[Bucket]] = {}
        for key, steps in raws.items():
            merged_steps[key] = [merged_compact(parts) for parts in steps]
            await self.lane.pace()
        return merged_steps, known

    def finished_per_second(self, start: int, end: int) -> dict[str, list[int]]:
        """Per queue, tasks finished in each second of [start, end), for sparklines."""
        return {queue: s.finished_between(start, end) for (queue, _), s in self._dims[""].items()}

    def gauges_now(self, queue: str, dim: str, value: str) -> GaugeTotal:
        return self.gauges.total(queue, dim, value, time.time())
