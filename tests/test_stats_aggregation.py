"""ClusterStats in process, on hand-made node reports: the time tiers, late
samples and the rollup deltas give the same counts as the raw samples."""

from __future__ import annotations

import asyncio
import time

from octobot.coordinator.stats import NODE, ClusterStats
from octobot.coordinator.stats_series import RETENTION
from octobot.histogram import Histogram
from octobot.v1 import node_pb2, stats_pb2


def report(at: int, n: int, seconds: float, queue: str = "q") -> node_pb2.StatsReport:
    h = Histogram()
    for _ in range(n):
        h.record(seconds)
    r = node_pb2.StatsReport(samples=[stats_pb2.QueueSample(
        queue=queue, succeeded=n, backlog=7, run_time=h.to_proto(), wait_time=h.to_proto(), end_to_end=h.to_proto())])
    r.at.FromSeconds(at)
    return r


def test_tiers_late_samples_and_deltas() -> None:
    now = int(time.time())
    start = now - 600
    stats = ClusterStats(start)

    async def run() -> None:
        for t in range(start, now):
            stats.ingest("a", {"dc": "east"}, report(t, 2, 0.1), now=t + 0.5)
            stats.ingest("b", {"dc": "west"}, report(t, 1, 0.3), now=t + 0.5)
            if t % 7 == 0:
                await stats.tick(t + 0.6)
        await stats.tick(now)

    asyncio.run(run())
    end = now + 1
    # Any window, read through 1 s, 10 s and 1 min blocks, counts every sample once.
    for window in (10, 61, 599, 600):
        steps, _ = stats.steps("", end - window, window, 1, end)
        assert steps[("q", "")][0].succeeded == 3 * (window - 1), window
    steps, _ = stats.steps("dc", end - 300, 300, 1, end)
    assert {v: b[0].succeeded for (_, v), b in steps.items()} == {"east": 598, "west": 299}
    assert abs(steps[("q", "west")][0].run.quantile(0.5) - 0.3) <= 0.003
    # Merged, not averaged: two thirds of the runs take 0.1 s.
    cluster = stats.steps("", end - 300, 300, 1, end)[0][("q", "")][0]
    assert abs(cluster.run.quantile(0.5) - 0.1) <= 0.001 and abs(cluster.run.quantile(0.99) - 0.3) <= 0.003
    # Per node: 1 s for the last 90 s, whole minutes before.
    steps, _ = stats.steps(NODE, end - 30, 30, 1, end)
    assert steps[("q", "a")][0].succeeded == 2 * 29

    # Steps of a range partition the same samples.
    steps, _ = stats.steps("", end - 120, 10, 12, end)
    assert sum(b.succeeded for b in steps[("q", "")]) == 3 * 119

    deltas, until = stats.take_deltas()
    stats.committed(until)
    queue_rows = [d for d in deltas if d.dim == ""]
    assert sum(d.succeeded for d in queue_rows) == 3 * (until - start)
    assert all(d.minute * 60 >= start - 60 for d in deltas)

    # A node's buffer, sent after an outage: 20 minutes old, past memory, lands in its minute.
    old = now - 20 * 60
    stats.ingest("a", {"dc": "east"}, report(old, 5, 0.1), now=now)
    late, _ = stats.take_deltas()
    assert {(d.dim, d.value, d.minute, d.succeeded) for d in late if d.minute == old // 60} == {
        ("", "", old // 60, 5), ("dc", "east", old // 60, 5)}
    # Within memory, a late sample shows at once in short windows too.
    stats.ingest("b", {"dc": "west"}, report(now - 100, 4, 0.3), now=now)
    steps, _ = stats.steps("", end - 200, 200, 1, end)
    assert steps[("q", "")][0].succeeded == 3 * 199 + 4
    assert old < now - RETENTION
