"""StatsService: cluster, queue and node reports, range queries and live
snapshots, merged from ClusterStats and, for time before memory, the
store's 1 minute rollups."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import AsyncIterator

import grpc

from octobot.coordinator import limits
from octobot.coordinator.app import Coordinator
from octobot.coordinator.errors import details, rpc_errors
from octobot.coordinator.stats.cluster import NODE, GaugeTotal, Key
from octobot.coordinator.stats.bucket import Bucket, merged, percentiles
from octobot.coordinator.stats.series import RETENTION
from octobot.durations import parse_duration
from octobot.v1 import stats_pb2, stats_pb2_grpc

# A window's bucket per (queue, value) and the seconds it covers; by (dim, start, queue).
Rows = tuple[dict[Key, Bucket], float]
Memo = dict[tuple[str, int, str | None], Rows]

log = logging.getLogger("octobot.coordinator.stats.cluster")
Ctx = grpc.aio.ServicerContext

MAX_POINTS = 1500
# Snapshots asked for within HOT_FOR seconds are kept fresh; one more than
# STALE_AFTER seconds behind the closed seconds is computed on the spot.
HOT_FOR = 10.0
STALE_AFTER = 2
WATCH_INTERVALS = (0.2, 60.0)
_LABEL = re.compile(r"^[A-Za-z0-9_.\-/]{1,63}$")
# Gauges summed over many nodes and queues are capped at what the fields hold
# (uint32, int64), rather than failing the whole response.
UINT32_MAX = 2**32 - 1
INT64_MAX = 2**63 - 1


def _row(queue: str, group: str, b: Bucket, seconds: float, g: GaugeTotal,
         measured: int | None = None) -> stats_pb2.QueueReport:
    if measured is None:
        # Not measured by the coordinator: what nodes report now. A live gauge is
        # never taken from the window's buckets (rollups: a past value).
        measured = g.backlog
    return stats_pb2.QueueReport(
        queue=queue, group=group, **b.counts(), rate=b.finished / seconds,
        in_flight=min(g.in_flight, UINT32_MAX), busy_slots=min(g.busy_slots, UINT32_MAX), nodes=g.nodes,
        backlog=min(measured, INT64_MAX),
        run_time=percentiles(b.run), wait_time=percentiles(b.wait), end_to_end=percentiles(b.e2e))


def _point(at: int, b: Bucket, seconds: float) -> stats_pb2.Point:
    point = stats_pb2.Point(**b.counts(), rate=b.finished / seconds, backlog=b.backlog,
                            run_time=percentiles(b.run), wait_time=percentiles(b.wait),
                            end_to_end=percentiles(b.e2e))
    point.at.FromSeconds(at)
    return point


class StatsService(stats_pb2_grpc.StatsServiceServicer):
    def __init__(self, app: Coordinator) -> None:
        self.app = app
        self.stats = app.stats
        # (window, by, queue) -> (closed second it covers, snapshot), and when it was last asked for.
        self._latest: dict[tuple[int, str, str | None], tuple[int, stats_pb2.GetClusterResponse]] = {}
        self._asked: dict[tuple[int, str, str | None], float] = {}

    # -- validation -----------------------------------------------------------

    def _window(self, text: str, what: str = "window", default: str = "1m") -> int:
        seconds = parse_duration(text or default, what)
        if seconds > self.app.retention:
            raise ValueError(f"{what} {text!r} is longer than the {self.app.retention // 86400}d kept "
                             f"(--stats-retention)")
        return seconds

    def _dim(self, by: str, start: int) -> str:
        """The series dimension ``by`` names; "" for none."""
        if by and not _LABEL.fullmatch(by):
            raise ValueError(f"bad 'by' {by!r}: give 'node' or a node label key such as 'dc'")
        if by and by != NODE and by not in (keys := self._label_keys()):
            raise ValueError(f"unknown label {by!r} for 'by': no node has it (nodes' labels: "
                             f"{', '.join(sorted(keys)[:20]) or 'none'})")
        if by == NODE and self.stats.beyond_memory(start):
            raise ValueError(f"by node covers at most the last {RETENTION // 60}m: "
                             "per-node figures are kept in memory only")
        return by

    def _label_keys(self) -> set[str]:
        """Label keys of the nodes registered, or reporting since the start."""
        return self.app.sessions.label_keys | self.stats.label_keys()

    async def _known(self, queue: str) -> None:
        limits.check_queue_name(queue)
        if not any(q == queue for q, _ in self.stats.series_keys("")):
            await self.app.db(self.app.store.get_queue, queue)  # NOT_FOUND for unknown queues

    # -- merging ----------------------------------------------------------------

    async def _steps(self, dim: str, first: int, step: int, count: int, end: int,
                     queue: str | None = None) -> tuple[dict[Key, list[Bucket]], int]:
        stats = self.stats
        if dim == NODE or not stats.needs_store(first):  # per-node figures live in memory only
            return await stats.steps(dim, first, step, count, end, queue=queue)
        flushed = stats.flushed_until
        stored = await self.app.db(self.app.store.stats_minutes, dim, first // 60, (flushed - 1) // 60, queue)
        return await stats.steps(dim, first, step, count, end, queue=queue, stored=stored, flushed=flushed)

    async def _window_rows(self, dim: str, start: int, end: int, queue: str | None = None,
                           memo: Memo | None = None) -> Rows:
        """Per (queue, value), the window's bucket, and the seconds it covers; kept in ``memo``
        when given, for snapshots of the same second that need the same rows."""
        if memo is not None and (rows := memo.get((dim, start, queue))) is not None:
            return rows
        steps, known = await self._steps(dim, start, end - start, 1, end, queue)
        # Rates divide by the time covered, so a young cluster's rate is not diluted.
        rows = {k: v[0] for k, v in steps.items()}, max(1.0, end - max(start, known))
        if memo is not None:
            memo[(dim, start, queue)] = rows
        return rows

    async def _cluster(self, window: int, by: str, queue: str | None = None) -> stats_pb2.GetClusterResponse:
        """The latest snapshot: ``refresh`` recomputes the ones asked for lately as
        each second closes, so however many dashboards ask, a call only reads it."""
        key = (window, by, queue)
        latest = self._latest.get(key)
        if latest is None or latest[0] < self.stats.closed_until - STALE_AFTER:
            end = self.stats.closed_until
            latest = self._latest[key] = (end, await self._compute_cluster(window, by, queue, end))
        self._asked[key] = time.monotonic()
        return latest[1]

    async def refresh(self, every: float = 0.1) -> None:
        """Keep the snapshots asked for in the last HOT_FOR seconds up to date."""
        done = 0
        while True:
            await asyncio.sleep(every)
            end = self.stats.closed_until
            if end == done:
                continue
            done = end
            memo: Memo = {}  # window rows shared by this second's snapshots
            for key, asked in list(self._asked.items()):
                if time.monotonic() - asked > HOT_FOR:
                    del self._asked[key]
                    self._latest.pop(key, None)
                    continue
                try:
                    self._latest[key] = (end, await self._compute_cluster(*key, end, memo))
                except Exception:  # the asker got this error itself; nothing to keep
                    log.exception("refreshing stats snapshot %s", key)

    async def _compute_cluster(self, window: int, by: str, queue: str | None, end: int,
                               memo: Memo | None = None) -> stats_pb2.GetClusterResponse:
        """A snapshot, computed in a turn of the stats lane."""
        async with self.stats.lane.turn():
            return await self._snapshot(window, by, queue, end, memo)

    async def _snapshot(self, window: int, by: str, queue: str | None, end: int,
                        memo: Memo | None) -> stats_pb2.GetClusterResponse:
        start = end - window
        dim = self._dim(by, start)
        stats = self.stats
        pace = stats.lane.pace
        buckets, seconds = await self._window_rows("", start, end, queue, memo)
        backlogs = self.app.backlogs
        # A row for every queue measured too: an idle or unserved one has a backlog to show.
        rows = {q: b for (q, _), b in buckets.items()}
        rows.update((q, Bucket()) for q in backlogs.names() - rows.keys() if queue is None or q == queue)
        resp = stats_pb2.GetClusterResponse(window_seconds=window, covered_seconds=seconds)
        for q, b in sorted(rows.items()):
            resp.queues.append(_row(q, "", b, seconds, stats.gauges_now(q, "", ""), backlogs.get(q)))
            await pace()
        if not dim:
            resp.totals.append(_row("", "", merged(list(buckets.values())), seconds, stats.gauges_now("", "", ""),
                                    backlogs.total(list(rows))))
            return resp
        groups, seconds = await self._window_rows(dim, start, end, queue, memo)
        by_value: dict[str, list[Bucket]] = {}
        for (q, v), b in sorted(groups.items()):
            resp.groups.append(_row(q, v, b, seconds, stats.gauges_now(q, dim, v)))
            by_value.setdefault(v, []).append(b)
            await pace()
        for v, bs in sorted(by_value.items()):
            resp.totals.append(_row("", v, merged(bs), seconds, stats.gauges_now("", dim, v)))
            await pace()
        return resp

    # -- RPCs -------------------------------------------------------------------

    @rpc_errors
    async def GetCluster(self, request: stats_pb2.GetClusterRequest, context: Ctx) -> stats_pb2.GetClusterResponse:
        return await self._cluster(self._window(request.window), request.by)

    @rpc_errors
    async def GetQueueStats(self, request: stats_pb2.GetQueueStatsRequest, context: Ctx) -> stats_pb2.GetQueueStatsResponse:
        window = self._window(request.window)
        await self._known(request.queue)
        cluster = await self._cluster(window, request.by, request.queue)
        total = cluster.queues[0] if cluster.queues else stats_pb2.QueueReport(queue=request.queue, backlog=-1)
        return stats_pb2.GetQueueStatsResponse(total=total, groups=cluster.groups, window_seconds=window,
                                               covered_seconds=cluster.covered_seconds)

    @rpc_errors
    async def GetNodeStats(self, request: stats_pb2.GetNodeStatsRequest, context: Ctx) -> stats_pb2.GetNodeStatsResponse:
        window = self._window(request.window)
        limits.check_node_ref(request.node_id)
        if not any(n == request.node_id for _, n in self.stats.series_keys(NODE)):
            await self.app.db(self.app.store.get_node, request.node_id)  # NOT_FOUND for unknown nodes
        end = self.stats.closed_until
        self._dim(NODE, end - window)
        buckets, seconds = await self._window_rows(NODE, end - window, end)
        mine = {q: b for (q, n), b in sorted(buckets.items()) if n == request.node_id}
        node, stats = request.node_id, self.stats
        return stats_pb2.GetNodeStatsResponse(
            window_seconds=window, covered_seconds=seconds,
            queues=[_row(q, node, b, seconds, stats.gauges_now(q, NODE, node)) for q, b in mine.items()],
            total=_row("", node, merged(list(mine.values())), seconds, stats.gauges_now("", NODE, node)))

    @rpc_errors
    async def QueryRange(self, request: stats_pb2.QueryRangeRequest, context: Ctx) -> stats_pb2.QueryRangeResponse:
        span = self._window(request.range, "range", "1h")
        end = self.stats.closed_until
        if request.step:
            step = parse_duration(request.step, "step")
        else:  # about 60 points, in whole minutes once the range needs the store
            step = max(1, span // 60)
            if self.stats.beyond_memory(end - span):
                step = max(60, step - step % 60)
        if step > span:
            raise ValueError(f"step {request.step!r} is longer than the range {request.range or '1h'!r}")
        first = (end - span) // step * step
        count = math.ceil((end - first) / step)
        if count > MAX_POINTS:
            raise ValueError(f"{count} points asked for; at most {MAX_POINTS}: use a longer step")
        if self.stats.beyond_memory(first) and step % 60:
            raise ValueError(f"step {request.step!r}: over time older than {RETENTION // 60}m "
                             "steps must be whole minutes")
        if request.queue:
            await self._known(request.queue)
        dim = self._dim(request.by, first)
        steps, _ = await self._steps(dim, first, step, count, end, request.queue or None)
        series: dict[str, list[list[Bucket]]] = {}
        for (_, v), buckets in sorted(steps.items()):
            series.setdefault(v, []).append(buckets)
        resp = stats_pb2.QueryRangeResponse(step_seconds=step)
        for v, per_queue in series.items():
            points = [_point(first + i * step, merged([bs[i] for bs in per_queue]),
                             max(1, min(end, first + (i + 1) * step) - first - i * step)) for i in range(count)]
            resp.series.append(stats_pb2.Series(queue=request.queue, group=v, points=points))
        return resp

    async def Watch(self, request: stats_pb2.WatchRequest, context: Ctx) -> AsyncIterator[stats_pb2.WatchResponse]:
        try:
            window = self._window(request.window)
            recent = self._window(request.recent, "recent") if request.recent else 0
            if recent > RETENTION:
                raise ValueError(f"recent {request.recent!r} is longer than the {RETENTION // 60}m kept at 1 s")
            interval = request.interval_seconds or 1.0
            if not WATCH_INTERVALS[0] <= interval <= WATCH_INTERVALS[1]:
                raise ValueError(f"interval_seconds {interval} is outside {WATCH_INTERVALS[0]}..{WATCH_INTERVALS[1]}")
            self._dim(request.by, self.stats.closed_until - window)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, details(str(exc)))
        while True:
            resp = stats_pb2.WatchResponse(snapshot=await self._cluster(window, request.by))
            resp.at.GetCurrentTime()
            if recent:
                end = self.stats.closed_until
                for queue, counts in sorted(self.stats.finished_per_second(end - recent, end).items()):
                    points = []
                    for i, n in enumerate(counts):
                        point = stats_pb2.Point(rate=float(n))
                        point.at.FromSeconds(end - recent + i)
                        points.append(point)
                    resp.recent.append(stats_pb2.Series(queue=queue, points=points))
            yield resp
            await asyncio.sleep(interval)

