"""ClusterStats in process, on hand-made node reports: the time tiers, late
samples and the rollup deltas give the same counts as the raw samples."""

from __future__ import annotations

import asyncio
import time

from octobot.coordinator.stats.report_checks import Samples, check_report
from octobot.coordinator.stats.cluster import GRACE, NODE, ClusterStats
from octobot.coordinator.stats.series import RETENTION
from octobot.histogram import Histogram
from octobot.v1 import node_pb2, stats_pb2


def report(at: int, n: int, seconds: float, queue: str = "q") -> Samples:
    """A node's report for second ``at``, checked as the coordinator checks it."""
    h = Histogram()
    for _ in range(n):
        h.record(seconds)
    r = node_pb2.StatsReport(samples=[stats_pb2.QueueSample(
        queue=queue, succeeded=n, backlog=7, run_time=h.to_proto(), wait_time=h.to_proto(), end_to_end=h.to_proto())])
    r.at.FromSeconds(at)
    return check_report(r, at)


def test_tiers_late_samples_and_deltas() -> None:
    asyncio.run(scenario())


async def scenario() -> None:
    now = int(time.time())
    start = now - 600
    stats = ClusterStats(start)

    for t in range(start, now):
        stats.ingest("a", {"dc": "east"}, report(t, 2, 0.1), now=t + 0.5)
        stats.ingest("b", {"dc": "west"}, report(t, 1, 0.3), now=t + 0.5)
        if t % 7 == 0:
            await stats.tick(t + 0.6)
    await stats.tick(now + GRACE)
    # Queries read closed time: every second up to now.
    end = stats.closed_until
    assert end == now
    # Any window, read through 1 s, 10 s and 1 min blocks, counts every sample once.
    for window in (10, 61, 599, 600):
        steps, _ = await stats.steps("", end - window, window, 1, end)
        assert steps[("q", "")][0].succeeded == 3 * window, window
    steps, _ = await stats.steps("dc", end - 300, 300, 1, end)
    assert {v: b[0].succeeded for (_, v), b in steps.items()} == {"east": 600, "west": 300}
    assert abs(steps[("q", "west")][0].run.quantile(0.5) - 0.3) <= 0.003
    # Merged, not averaged: two thirds of the runs take 0.1 s.
    cluster = (await stats.steps("", end - 300, 300, 1, end))[0][("q", "")][0]
    assert abs(cluster.run.quantile(0.5) - 0.1) <= 0.001 and abs(cluster.run.quantile(0.99) - 0.3) <= 0.003
    # Per node: 1 s for the last 90 s, whole minutes before.
    steps, _ = await stats.steps(NODE, end - 30, 30, 1, end)
    assert steps[("q", "a")][0].succeeded == 2 * 30
    steps, _ = await stats.steps(NODE, end - 540, 540, 1, end)
    assert steps[("q", "b")][0].succeeded == 540 + end % 60  # the first minute counts whole

    # Steps of a range partition the same samples.
    steps, _ = await stats.steps("", end - 120, 10, 12, end)
    assert [b.succeeded for b in steps[("q", "")]] == [30] * 12

    deltas, until = await stats.take_deltas()
    stats.committed(until)
    assert until == end
    assert sum(d.succeeded for d in deltas if d.dim == "") == 3 * (until - start)
    assert {d.minute for d in deltas} == set(range(start // 60, (end - 1) // 60 + 1))

    # A node's buffer, sent after an outage: 20 minutes old, past memory, lands in its minute.
    old = now - 20 * 60
    assert old < now - RETENTION
    stats.ingest("a", {"dc": "east"}, report(old, 5, 0.1), now=now)
    late, _ = await stats.take_deltas()
    assert {(d.dim, d.value, d.minute, d.succeeded) for d in late} == {
        ("", "", old // 60, 5), ("dc", "east", old // 60, 5)}
    # Within memory, a late sample shows at once, in its second and in the blocks.
    stats.ingest("b", {"dc": "west"}, report(now - 100, 4, 0.3), now=now)
    for window in (200, 101, 600):
        steps, _ = await stats.steps("", end - window, window, 1, end)
        assert steps[("q", "")][0].succeeded == 3 * window + 4, window
    late, _ = await stats.take_deltas()
    assert [(d.dim, d.minute, d.succeeded) for d in late if d.dim == ""] == [("", (now - 100) // 60, 4)]


def test_a_sample_arriving_while_its_second_is_merged_counts() -> None:
    asyncio.run(arrives_mid_merge())


async def arrives_mid_merge() -> None:
    now = int(time.time())
    stats = ClusterStats(now - 10)
    second = now - 10
    for node in range(5000):  # enough for the merge to yield (every 2,000 samples)
        stats.ingest(f"n{node}", {"dc": "east"}, report(second, 1, 0.1), now=second + 0.5)
    lane = stats.lane
    pace, straggled = lane.pace, []

    async def pace_with_a_straggler() -> None:
        """The first yield of the merge: a sample of the same second comes in."""
        if not straggled:
            straggled.append(True)
            stats.ingest("late", {"dc": "east"}, report(second, 7, 0.1), now=second + 2.9)
        await pace()

    lane.pace = pace_with_a_straggler
    await stats.tick(second + GRACE + 1)
    steps, _ = await stats.steps("", second, 1, 1, second + 1)
    assert steps[("q", "")][0].succeeded == 5000 + 7
    steps, _ = await stats.steps("dc", second, 1, 1, second + 1)
    assert steps[("q", "east")][0].succeeded == 5000 + 7
