"""Bounds on what nodes send (coordinator/limits.py): each bound passes just
inside and fails just outside, real nodes' reports always pass, the rate
limiter keeps a reconnecting node's buffer, and a node's bad reports leave
the cluster's stats intact."""

from __future__ import annotations

import asyncio
import math
import socket
import time
import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octobot.coordinator import limits
from octobot.coordinator.limits import Invalid, NodeLimits, Refusal, TokenBucket
from octobot.coordinator.stats import report_checks
from octobot.coordinator.stats.report_checks import check_report
from octobot.coordinator.stats.report_intake import ReportIntake
from octobot.coordinator.stats.cluster import GRACE, ClusterStats
from octobot.coordinator.stats.bucket import merged_compact
from octobot.histogram import DEFAULT_ACCURACY, MAX_VALUE, Histogram
from octobot.node.metrics import QueueMetrics
from octobot.node.stats_buffer import CAPACITY
from octobot.v1 import node_pb2, stats_pb2

NOW = 1_800_000_000.0


def hello(**fields: object) -> node_pb2.Hello:
    base: dict[str, object] = {"node_id": "web-1.example.com-1a2b3c4d", "hostname": "web-1.example.com",
                               "labels": {"dc": "us-east"}, "version": "0.1.0", "tasks": ["emails.send"]}
    return node_pb2.Hello(**{**base, **fields})


def report(*samples: stats_pb2.QueueSample, at: float = NOW) -> node_pb2.StatsReport:
    r = node_pb2.StatsReport(samples=samples)
    r.at.FromSeconds(int(at))
    return r


def sample(queue: str = "emails", values: tuple[float, ...] = (0.01, 0.2, 3.0),
           **fields: object) -> stats_pb2.QueueSample:
    h = Histogram()
    for v in values:
        h.record(v)
    base: dict[str, object] = {"queue": queue, "succeeded": len(values), "run_time": h.to_proto(),
                               "wait_time": h.to_proto(), "end_to_end": h.to_proto()}
    return stats_pb2.QueueSample(**{**base, **fields})


def histogram(indexes: list[int], counts: list[int], **fields: object) -> stats_pb2.Histogram:
    return stats_pb2.Histogram(relative_accuracy=DEFAULT_ACCURACY, indexes=indexes, counts=counts, **fields)


def refused(r: node_pb2.StatsReport, now: float = NOW) -> str | None:
    """The reason check_report gives, None if it passes."""
    try:
        check_report(r, now)
    except Invalid as exc:
        assert exc.reason in limits.REASONS
        assert "\n" not in str(exc)
        return exc.reason
    return None


def intake() -> ReportIntake:
    return ReportIntake(NodeLimits(), ClusterStats(NOW))


def refuse(guard: ReportIntake, node_id: str, r: node_pb2.StatsReport, now: float) -> Refusal | None:
    """What the coordinator does with a report a node sent at ``now``: None if it passes."""
    result = guard.admit([(node_id, {}, r, now)])[0]
    return result if isinstance(result, Refusal) else None


# -- Hello ------------------------------------------------------------------------------

def test_the_ids_nodes_make_pass() -> None:
    limits.check_hello(hello(node_id=f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"))
    limits.check_hello(hello(node_id="node@dc1:7"))


@pytest.mark.parametrize("fields", [
    {"node_id": "n" * 128}, {"hostname": "h" * 255}, {"hostname": ""}, {"version": "v" * 64},
    {"labels": {f"k{i}": "v" for i in range(64)}}, {"labels": {"k" * 63: "v" * 255}},
    {"labels": {"example.com/zone": "a-1_b.c", "empty": ""}},
    {"tasks": ["t"] * 10_000}, {"tasks": ["t" * 255, "app.tasks:send émail"]}, {"applied_generation": 0},
])
def test_hello_just_inside_passes(fields: dict[str, object]) -> None:
    limits.check_hello(hello(**fields))


@pytest.mark.parametrize("fields, message", [
    ({"node_id": "n" * 129}, "node_id"), ({"node_id": "a b"}, "node_id"), ({"node_id": "a\n"}, "node_id"),
    ({"node_id": "é"}, "node_id"),
    ({"hostname": "h" * 256}, "longer than 255"), ({"hostname": "h\x00"}, "control"),
    ({"version": "v" * 65}, "longer than 64"), ({"version": "1\n2"}, "control"),
    ({"labels": {f"k{i}": "v" for i in range(65)}}, "65 labels"),
    ({"labels": {"k" * 64: "v"}}, "label key"), ({"labels": {"-k": "v"}}, "label key"),
    ({"labels": {"dc": "v" * 256}}, "label dc="), ({"labels": {"dc": "us east"}}, "label dc="),
    ({"tasks": ["t"] * 10_001}, "10001 tasks"), ({"tasks": ["t" * 256]}, "task name"),
    ({"tasks": ["\U0001F600" * 200 + f"{i:055d}" for i in range(400)]}, "task names of 342,000 bytes"),
    ({"tasks": ["a\x00"]}, "task name"), ({"applied_generation": -1}, "negative"),
])
def test_hello_just_outside_fails(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        limits.check_hello(hello(**fields))
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


# -- reports ------------------------------------------------------------------------------

def test_a_real_nodes_reports_pass() -> None:
    """What node/metrics.py makes, whatever its clocks and producers did."""
    m = QueueMetrics("emails")
    now = time.time()
    for enqueued, started, ended in ((now - 1, now - 0.5, now), (0.0, now, now + 1e-12), (1.0, now, now),
                                     (now + 3600, now, now), (1e308, now, now), (now, math.inf, now),
                                     (now, now, math.nan), (-5.0, now - 1e9, now)):
        m.finished(True, enqueued, started, ended)
    m.finished(False, now, now, now + 2)
    m.count(retried=3, dead_lettered=1, rejected=2)
    assert refused(report(m.take(in_flight=7, busy_slots=4, backlog=-1), at=now), now) is None
    assert refused(report(m.take(in_flight=0, busy_slots=0, backlog=0), at=now), now) is None  # an empty interval


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50))
def test_any_recorded_values_pass(values: list[float]) -> None:
    h = Histogram()
    h.record_many(np.array(values, dtype=np.float64))
    assert all(limits.MIN_INDEX <= i <= limits.MAX_INDEX for i in h.buckets)
    s = stats_pb2.QueueSample(queue="q", succeeded=len(values), run_time=h.to_proto())
    assert refused(report(s)) is None


def test_report_bounds_just_inside_pass() -> None:
    top = limits.MAX_COUNT
    for r in (
        report(*[sample(f"q{i}") for i in range(limits.MAX_SAMPLES)]),
        report(sample(succeeded=top, failed=top, retried=top, dead_lettered=top, rejected=top)),
        report(sample(in_flight=limits.MAX_GAUGE, busy_slots=limits.MAX_GAUGE, backlog=limits.MAX_BACKLOG)),
        report(sample(backlog=-1)),
        report(sample("q" * 128)),
        report(sample(values=(), succeeded=top, run_time=histogram([limits.MIN_INDEX, limits.MAX_INDEX], [top - 1, 1],
                                                                   sum=MAX_VALUE))),
        report(sample(values=(), succeeded=2, run_time=histogram([], [], zero_count=2))),
        report(sample(values=(), succeeded=1, run_time=stats_pb2.Histogram(indexes=[5], counts=[1], sum=1.0))),
        report(sample(), at=NOW - limits.MAX_REPORT_AGE),
        report(sample(), at=NOW + 86_400),  # a clock ahead: ClusterStats.ingest clamps it to now
        node_pb2.StatsReport(samples=[sample()]),  # no time: now
    ):
        assert refused(r) is None


OUTSIDE = [
    (report(*[sample(f"q{i}") for i in range(limits.MAX_SAMPLES + 1)]), "samples"),
    (report(sample("q" * 129)), "queue"),
    (report(sample("-q")), "queue"),
    (report(sample("q\n")), "queue"),
    (report(sample("")), "queue"),
    (report(sample(succeeded=limits.MAX_COUNT + 1)), "counts"),
    (report(sample(rejected=2**64 - 1)), "counts"),
    (report(sample(busy_slots=limits.MAX_GAUGE + 1)), "gauges"),
    (report(sample(backlog=-2)), "gauges"),
    (report(sample(backlog=limits.MAX_BACKLOG + 1)), "gauges"),
    (report(sample(run_time=histogram([1, 2], [1]))), "histogram"),
    (report(sample(wait_time=histogram([1], [1, 1]))), "histogram"),
    (report(sample(run_time=histogram([limits.MIN_INDEX - 1], [1]))), "histogram"),
    (report(sample(end_to_end=histogram([limits.MAX_INDEX + 1], [1]))), "histogram"),
    (report(sample(values=(), succeeded=limits.MAX_COUNT, failed=limits.MAX_COUNT,
                   run_time=histogram([1], [limits.MAX_COUNT + 1]))), "histogram"),
    (report(sample(values=(), succeeded=3, run_time=histogram([1, 2], [2, 2]))), "histogram"),
    (report(sample(values=(), succeeded=3, run_time=histogram([1], [1], zero_count=3))), "histogram"),
    (report(sample(run_time=histogram([1], [1], sum=math.nan))), "histogram"),
    (report(sample(run_time=histogram([1], [1], sum=math.inf))), "histogram"),
    (report(sample(run_time=histogram([1], [1], sum=-1e-9))), "histogram"),
    (report(sample(run_time=histogram([1], [1], sum=MAX_VALUE * 1.01))), "histogram"),
    (report(sample(run_time=stats_pb2.Histogram(relative_accuracy=0.02, indexes=[1], counts=[1]))), "histogram"),
    (report(sample(), at=NOW - limits.MAX_REPORT_AGE - 1), "time"),
]


@pytest.mark.parametrize("bad, reason", OUTSIDE)
def test_report_bounds_just_outside_fail(bad: node_pb2.StatsReport, reason: str) -> None:
    assert refused(bad) == reason


def smuggled(**fields: int) -> stats_pb2.QueueSample:
    """A sample carrying a value as the field's packed list: unknown to a QueueSample, read by the merge."""
    raw = sample().SerializeToString()
    for number, value in fields.items():
        raw += bytes([int(number[1:]) << 3 | 2, 1, value])
    return stats_pb2.QueueSample.FromString(raw)


# Samples holding, in one field, the value the batch checks lay after each sample.
HOLDING_SENTINELS = [
    sample(succeeded=report_checks.SENTINEL_COUNT), sample(backlog=report_checks.SENTINEL_BACKLOG),
    sample(in_flight=report_checks.SENTINEL_GAUGE), sample(report_checks.SENTINEL_NAME),
    sample(run_time=histogram([report_checks.SENTINEL_INDEX], [report_checks.SENTINEL_COUNT])),
    sample(run_time=histogram([report_checks.SENTINEL_INDEX], [1])),
    sample(wait_time=histogram([1], [1], sum=report_checks.SENTINEL_SUM)),
    sample(end_to_end=histogram([1], [1], zero_count=report_checks.SENTINEL_COUNT)),
]
POOL = ([r for r, _ in OUTSIDE] + [report(s) for s in HOLDING_SENTINELS]
        + [report(smuggled(f2=1)), report(smuggled(f9=5)), report(sample(), sample(rejected=2**64 - 1))]
        + [report(sample(f"q{i}", values=(0.001 * i,) * (i % 5)), sample(f"p{i}", backlog=i)) for i in range(20)]
        + [report(), node_pb2.StatsReport(samples=[sample()])])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(POOL), min_size=1, max_size=40))
def test_a_batch_gives_each_report_the_verdict_it_gets_alone(reports: list[node_pb2.StatsReport]) -> None:
    """However good and bad reports are mixed in a batch, each passes or
    fails as it does alone, with its own samples."""
    alone = []
    for r in reports:
        try:
            alone.append(check_report(r, NOW))
        except Invalid as exc:
            alone.append(exc.reason)
    together = report_checks.check_reports(reports, [NOW] * len(reports))
    assert [t.reason if isinstance(t, Invalid) else t for t in together] == alone
    assert all(s.queues == [q.queue for q in r.samples] for r, s in zip(reports, together) if not isinstance(s, Invalid))


def test_samples_holding_a_sentinel_are_refused() -> None:
    for s in HOLDING_SENTINELS:
        assert refused(report(s)) is not None, s


def test_buckets_per_report_are_bounded() -> None:
    wide = histogram(list(range(limits.MIN_INDEX, limits.MAX_INDEX + 1)), [1] * limits.MAX_BUCKETS)
    per_sample = 3 * limits.MAX_BUCKETS
    fits = limits.MAX_REPORT_BUCKETS // per_sample
    full = [sample(f"q{i}", values=(), succeeded=limits.MAX_BUCKETS, run_time=wide, wait_time=wide, end_to_end=wide)
            for i in range(fits + 1)]
    assert refused(report(*full[:fits])) is None
    assert refused(report(*full)) == "histogram"


def test_what_the_merge_reads_is_checked_too() -> None:
    """A value a QueueSample does not see (field 2 sent as a packed list: an
    unknown field to it, kept and written back) is one the merge reads, as
    SampleColumns: refused."""
    raw = sample().SerializeToString() + bytes([0x12, 0x02, 0x01, 0x02])
    smuggling = stats_pb2.QueueSample.FromString(raw)
    assert smuggling.succeeded == 3
    assert refused(report(smuggling)) == "counts"


# -- rate and queues per node ---------------------------------------------------------------

def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, tokens=3.0, at=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)  # 2 a second
    assert not bucket.take(0.4)  # a clock stepping back takes nothing away, gives nothing
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # never more than the burst


def test_a_reconnecting_nodes_buffer_is_kept_then_the_rate_holds() -> None:
    guard = intake()
    buffered = [report(sample(), at=NOW - CAPACITY + i) for i in range(CAPACITY)]
    assert all(refuse(guard, "a", r, NOW) is None for r in buffered)
    # Then one a second, for ever.
    assert all(refuse(guard, "a", report(sample(), at=NOW + t), NOW + t) is None for t in range(1, 3600))
    # A flood is refused beyond the burst, counted, and logged once.
    late = NOW + 3600
    flood = [refuse(guard, "a", report(sample(), at=late), late) for _ in range(limits.REPORT_BURST + 50)]
    refusals = [f for f in flood if f is not None]
    assert len(refusals) >= 50 and {f.reason for f in refusals} == {"rate"}
    assert [f.first for f in refusals].count(True) == 1
    assert guard.limits.refused[("a", "rate")] == len(refusals)
    # Other nodes are not affected.
    assert refuse(guard, "b", report(sample(), at=late), late) is None


def test_distinct_queues_per_node_are_bounded() -> None:
    guard = intake()
    t = NOW
    for i in range(0, limits.MAX_NODE_QUEUES, 100):
        t += 1
        assert refuse(guard, "a", report(*[sample(f"q{j}") for j in range(i, i + 100)], at=t), t) is None
    refusal = refuse(guard, "a", report(sample("one-more"), at=t), t)
    assert refusal is not None and refusal.reason == "queues"
    assert refuse(guard, "a", report(sample("q7"), at=t), t) is None  # known ones still pass
    # Names not reported for QUEUE_MEMORY seconds make room.
    later = t + limits.QUEUE_MEMORY + 1
    assert refuse(guard, "a", report(sample("one-more"), at=later), later) is None


def test_heartbeats_are_bounded() -> None:
    guard = intake()
    ok = node_pb2.Heartbeat(queues=[node_pb2.QueueStatus(queue="emails", error="e" * limits.MAX_ERROR_CHARS)])
    assert guard.limits.refuse_heartbeat("a", ok) is None
    for bad in (node_pb2.Heartbeat(queues=[node_pb2.QueueStatus(queue="q" * 129)]),
                node_pb2.Heartbeat(queues=[node_pb2.QueueStatus(queue="q", error="e" * (limits.MAX_ERROR_CHARS + 1))]),
                node_pb2.Heartbeat(queues=[node_pb2.QueueStatus(queue="q")] * (limits.MAX_NODE_QUEUES + 1)),
                node_pb2.Heartbeat(queues=[node_pb2.QueueStatus(queue="q", error="x\x00y")]),
                node_pb2.Heartbeat(queues=[node_pb2.QueueStatus(queue="q", missing_tasks=["evil\n2026 INFO forged"])]),
                node_pb2.Heartbeat(queues=[node_pb2.QueueStatus(queue="q", missing_tasks=["t"] * 11)])):
        refusal = guard.limits.refuse_heartbeat("a", bad)
        assert refusal is not None and refusal.reason == "heartbeat"


# -- lookups and admin calls ------------------------------------------------------------------

def test_lookups_and_counts() -> None:
    assert limits.check_queue_name("q" * 128) == "q" * 128
    for bad in ("q" * 129, "", "a\x00", "a\n"):
        with pytest.raises(ValueError, match="queue name"):
            limits.check_queue_name(bad)
    assert limits.check_node_ref("old node 1") == "old node 1"  # ids from before check_node_id still found
    with pytest.raises(ValueError, match="node_id"):
        limits.check_node_ref("n" * 129)
    limits.check_count(limits.MAX_PER_CALL, "messages")
    with pytest.raises(ValueError, match="10001 messages in one call; at most 10,000"):
        limits.check_count(limits.MAX_PER_CALL + 1, "messages")


# -- the cluster's stats ------------------------------------------------------------------------

def test_a_bad_node_cannot_poison_the_cluster() -> None:
    asyncio.run(poison())


async def poison() -> None:
    now = int(time.time())
    stats = ClusterStats(now - 60)
    guard = ReportIntake(NodeLimits(), stats)
    with pytest.raises(ValueError, match="label dc="):
        limits.check_hello(hello(node_id="a", labels={"dc": "x" * 300}))
    bad = [report(sample(run_time=histogram([1, 2, 3], [1, 1])), at=now),
           report(sample(values=(), succeeded=5, run_time=histogram([1], [2**64 - 1])), at=now),
           report(sample(run_time=histogram([1], [1], sum=math.nan)), at=now),
           report(sample("q" * 200), at=now)]
    good = report(sample(values=(0.1, 0.1, 0.3)), at=now)
    # As they come in: checked together, in one batch.
    for r in bad[:2]:
        guard.put("a", {"dc": "east"}, r, now + 0.5)
    guard.put("b", {"dc": "west"}, good, now + 0.5)
    for r in bad[2:]:
        guard.put("a", {"dc": "east"}, r, now + 0.5)
    await guard.drain()
    await stats.tick(now + GRACE + 1)
    end = stats.closed_until
    steps, _ = await stats.steps("", end - 10, 10, 1, end)
    assert steps[("emails", "")][0].succeeded == 3
    assert abs(steps[("emails", "")][0].run.quantile(0.5) - 0.1) <= 0.001
    steps, _ = await stats.steps("dc", end - 10, 10, 1, end)
    assert {v for _, v in steps} == {"west"}
    deltas, until = await stats.take_deltas()
    stats.committed(until)
    assert sum(d.succeeded for d in deltas if d.dim == "") == 3
    assert guard.limits.refused == {("a", "histogram"): 3, ("a", "queue"): 1}


def test_without_the_checks_one_bad_sample_breaks_every_merge_it_is_in() -> None:
    """Why the pairing of indexes and counts is checked per sample."""
    bad = sample(run_time=histogram([1, 2, 3], [1, 1])).SerializeToString()
    with pytest.raises(ValueError):
        merged_compact([bad, sample().SerializeToString()])


def test_a_report_without_samples_passes() -> None:
    """A node with no queues still reports (its heartbeat carries the rest)."""
    assert check_report(node_pb2.StatsReport(), time.time()).queues == []
