"""Cluster stats end to end: a real coordinator and two real nodes in two
datacenters run tasks of known length, and every view — per queue, per dc,
per node, cluster-wide, range, live, Prometheus — reports the known answers."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

import octobot
from support.cluster import Coordinator, octoctl, octoctl_json, wait_until
from support.processes import Processes
from octobot import rpc
from octobot.v1 import stats_pb2, stats_pb2_grpc

FAST, SLOW = 0.05, 0.1
# The histogram's relative error, and what a sleep may overshoot by on a busy machine (9 ms seen with the
# whole suite on two cores).
ACCURACY, JITTER = 0.01, 0.015


def within(value: float, seconds: float) -> bool:
    """A latency the histogram read back, for work that slept ``seconds``."""
    return seconds * (1 - ACCURACY) <= value <= seconds * (1 + 2 * ACCURACY) + JITTER


def enqueue(url: str, queue: str, seconds: float, n: int, fail: bool = False) -> None:
    with octobot.Client(url) as client:
        client.enqueue_many(queue, [octobot.Envelope.new("e2e.sleep", [seconds, fail]) for _ in range(n)])


def code_of(call: object, request: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)  # type: ignore[operator]
    return info.value.code()


@pytest.fixture
def stub(procs: Processes, tmp_path: Path) -> Iterator[tuple[Coordinator, stats_pb2_grpc.StatsServiceStub]]:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}", metrics=True)
    channel = rpc.make_channel(coord.target)
    yield coord, stats_pb2_grpc.StatsServiceStub(channel)
    channel.close()


def test_implausible_enqueue_times_are_counted_and_left_out_of_wait_times(
        procs: Processes, stub: tuple, tmp_path: Path, key: str) -> None:
    """A message claiming it was enqueued in 1970 added 1.78e7 s to the wait-time mean."""
    coord, stats = stub
    procs.node(coord.target, "a", ["dc=us-east"])
    url = f"sqlite:///{tmp_path / 'queues.db'}"
    octoctl(coord.target, "queue", "add", key, "--backend", "sqlite", "--url", url)
    honest = octobot.Envelope.new("e2e.sleep", [0.0, False])
    with octobot.Client(url) as client:
        client.enqueue_many(key, [honest, honest, dataclasses.replace(honest, enqueued_at=1.0)])
    wait_until(lambda: finished(stats, key) == 3, timeout=30, what="3 tasks in the stats")
    [row] = stats.GetCluster(stats_pb2.GetClusterRequest(window="1m"), timeout=10).queues
    assert (row.run_time.count, row.wait_time.count, row.end_to_end.count) == (3, 2, 2)
    assert row.wait_time.p999 < 60
    text = urllib.request.urlopen(coord.metrics_url, timeout=10).read().decode()
    counted = [s for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "octobot_implausible_enqueue_times_total"]
    assert [(s.labels["queue"], s.value) for s in counted] == [(key, 1.0)]


def finished(stub: stats_pb2_grpc.StatsServiceStub, queue: str, window: str = "1m") -> int:
    total = stub.GetQueueStats(stats_pb2.GetQueueStatsRequest(queue=queue, window=window), timeout=10).total
    return total.succeeded + total.failed


def test_known_workload_per_queue_dc_node_and_cluster(procs: Processes, stub: tuple, tmp_path: Path,
                                                      key: str) -> None:
    coord, stats = stub
    east = procs.node(coord.target, "east", ["dc=us-east"])
    west = procs.node(coord.target, "west", ["dc=eu-west"])
    url = f"sqlite:///{tmp_path / 'queues.db'}"
    fast, slow = f"{key}-fast", f"{key}-slow"
    octoctl(coord.target, "queue", "add", fast, "--backend", "sqlite", "--url", url, "--selector", "dc=us-east",
            "--concurrency", "4", "--max-retries", "0")
    octoctl(coord.target, "queue", "add", slow, "--backend", "sqlite", "--url", url, "--selector", "dc=eu-west",
            "--concurrency", "4")
    enqueue(url, fast, FAST, 40)
    enqueue(url, fast, FAST, 5, fail=True)
    enqueue(url, slow, SLOW, 20)
    wait_until(lambda: finished(stats, fast) == 45 and finished(stats, slow) == 20, timeout=30,
               what="65 tasks in the stats")
    # Gauges are totalled every second; nodes sample the broker's backlog every few.
    wait_until(lambda: [(r.nodes, r.in_flight, r.backlog) for r in stats.GetCluster(
        stats_pb2.GetClusterRequest(), timeout=10).queues] == [(1, 0, 0)] * 2, what="idle queues, one node each")

    cluster = stats.GetCluster(stats_pb2.GetClusterRequest(window="1m", by="dc"), timeout=10)
    rows = {r.queue: r for r in cluster.queues}
    assert (rows[fast].succeeded, rows[fast].failed, rows[fast].dead_lettered, rows[fast].retried) == (40, 5, 5, 0)
    assert (rows[slow].succeeded, rows[slow].failed, rows[slow].dead_lettered) == (20, 0, 0)
    assert rows[fast].run_time.count == 45 and rows[slow].run_time.count == 20
    assert within(rows[fast].run_time.p50, FAST) and within(rows[fast].run_time.p99, FAST)
    assert within(rows[slow].run_time.p50, SLOW) and within(rows[slow].run_time.p999, SLOW)
    for r in rows.values():
        assert r.end_to_end.p50 >= r.run_time.p50 and r.wait_time.count == r.run_time.count
        assert r.rate > 0
    # Each queue runs in one dc, so the dc rows are the queue rows.
    groups = {(r.queue, r.group): r for r in cluster.groups}
    assert set(groups) == {(fast, "us-east"), (slow, "eu-west")}
    assert groups[(fast, "us-east")].succeeded == 40 and groups[(slow, "eu-west")].succeeded == 20
    totals = {r.group: r for r in cluster.totals}
    assert (totals["us-east"].succeeded, totals["eu-west"].succeeded) == (40, 20)
    assert within(totals["eu-west"].run_time.p50, SLOW)

    # Cluster-wide percentiles merge histograms: 45 fast and 20 slow give a fast
    # median and a slow p99, where averaging the queues' medians would give 75 ms.
    whole = stats.GetCluster(stats_pb2.GetClusterRequest(window="1m"), timeout=10).totals
    assert len(whole) == 1 and (whole[0].succeeded, whole[0].failed) == (60, 5)
    assert within(whole[0].run_time.p50, FAST) and within(whole[0].run_time.p99, SLOW)
    assert whole[0].run_time.mean == pytest.approx((45 * FAST + 20 * SLOW) / 65, rel=0.1)

    by_node = stats.GetQueueStats(stats_pb2.GetQueueStatsRequest(queue=fast, window="1m", by="node"), timeout=10)
    assert [(r.group, r.succeeded) for r in by_node.groups] == [(east.node_id, 40)]
    node = stats.GetNodeStats(stats_pb2.GetNodeStatsRequest(node_id=west.node_id, window="15m"), timeout=10)
    assert [(r.queue, r.succeeded) for r in node.queues] == [(slow, 20)] and node.total.succeeded == 20

    # A range: 10 s points over the last minute add up to the same counts.
    series = stats.QueryRange(stats_pb2.QueryRangeRequest(queue=fast, range="1m", step="10s", by="dc"),
                              timeout=10).series
    assert [(s.queue, s.group) for s in series] == [(fast, "us-east")]
    points = series[0].points
    assert len(points) in (6, 7) and sum(p.succeeded for p in points) == 40
    assert all(b.at.seconds - a.at.seconds == 10 for a, b in zip(points, points[1:]))
    assert max(within(p.run_time.p50, FAST) for p in points)
    everything = stats.QueryRange(stats_pb2.QueryRangeRequest(range="2m", step="1s"), timeout=10)
    assert everything.step_seconds == 1 and len(everything.series) == 1 and everything.series[0].queue == ""
    assert sum(p.succeeded + p.failed for p in everything.series[0].points) == 65

    # Watch: fresh snapshots on a stream, with per-second history for sparklines.
    watch = stats.Watch(stats_pb2.WatchRequest(window="1m", interval_seconds=0.2, recent="10s"), timeout=10)
    snapshots = [next(watch), next(watch)]
    watch.cancel()
    assert snapshots[1].at.ToNanoseconds() > snapshots[0].at.ToNanoseconds()
    for snap in snapshots:
        assert {r.queue: r.succeeded for r in snap.snapshot.queues} == {fast: 40, slow: 20}
        assert {s.queue for s in snap.recent} == {fast, slow} and all(len(s.points) == 10 for s in snap.recent)

    # Prometheus: counters per queue, node and dc; histogram buckets per queue and dc.
    text = urllib.request.urlopen(coord.metrics_url, timeout=10).read().decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(name: str, **labels: str) -> float:
        return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())

    assert value("octobot_tasks_total", queue=fast, outcome="succeeded", dc="us-east", node=east.node_id) == 40
    assert value("octobot_tasks_total", queue=fast, outcome="dead_lettered") == 5
    assert value("octobot_tasks_total", queue=slow, outcome="succeeded", dc="eu-west") == 20
    assert value("octobot_task_run_seconds_count", queue=slow, dc="eu-west") == 20
    assert value("octobot_task_run_seconds_bucket", queue=slow, dc="eu-west", le="0.05") == 0
    assert value("octobot_task_run_seconds_bucket", queue=slow, dc="eu-west", le="0.25") == 20
    assert value("octobot_node_up", node=west.node_id, dc="eu-west") == 1
    assert value("octobot_assignment_generation") == 2
    assert value("octobot_node_applied_generation", node=west.node_id) == 2  # east saw no change at 2


def test_bad_requests_get_precise_statuses(stub: tuple) -> None:
    _, stats = stub
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    for window in ("banana", "0s", "1.5s", "8d", "-1m"):
        assert code_of(stats.GetCluster, stats_pb2.GetClusterRequest(window=window)) == invalid, window
    assert code_of(stats.GetCluster, stats_pb2.GetClusterRequest(by="node", window="1h")) == invalid
    assert code_of(stats.GetCluster, stats_pb2.GetClusterRequest(by="not a label!")) == invalid
    assert code_of(stats.GetCluster, stats_pb2.GetClusterRequest(by="zone")) == invalid  # no node has it
    assert code_of(stats.GetQueueStats, stats_pb2.GetQueueStatsRequest(queue="ghost")) == grpc.StatusCode.NOT_FOUND
    assert code_of(stats.GetNodeStats, stats_pb2.GetNodeStatsRequest(node_id="ghost")) == grpc.StatusCode.NOT_FOUND
    assert code_of(stats.QueryRange, stats_pb2.QueryRangeRequest(queue="ghost")) == grpc.StatusCode.NOT_FOUND
    for rng, step in (("1h", "0s"), ("1h", "1x"), ("24h", "1s"), ("1m", "5m"), ("1h", "10s"), ("8d", "1h")):
        request = stats_pb2.QueryRangeRequest(range=rng, step=step)
        assert code_of(stats.QueryRange, request) == invalid, (rng, step)
    watch = stats.Watch(stats_pb2.WatchRequest(interval_seconds=0.01), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        next(watch)
    assert info.value.code() == invalid
    # The coordinator is still fine.
    assert stats.GetCluster(stats_pb2.GetClusterRequest(window="24h"), timeout=10).window_seconds == 86400


def test_restart_keeps_rollups_and_takes_buffered_samples(procs: Processes, tmp_path: Path, key: str) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    procs.node(coord.target, "east", ["dc=us-east"])
    url = f"sqlite:///{tmp_path / 'queues.db'}"
    octoctl(coord.target, "queue", "add", key, "--backend", "sqlite", "--url", url, "--concurrency", "4")
    enqueue(url, key, 0.01, 20)
    wait_until(lambda: octoctl_json(coord.target, "stats", "--queue", key)["rows"][0]["succeeded"] == "20",
               what="20 tasks in the stats")

    # Stopped: the node keeps working and buffers its reports.
    coord.terminate()
    enqueue(url, key, 0.01, 15)
    with octobot.Client(url) as client:
        wait_until(lambda: client.depth(key) == 0, what="the node to run the work offline")
    coord = procs.restart(coord)

    def counts(*args: str) -> list[tuple[str, str]]:
        rows = octoctl_json(coord.target, "stats", "--queue", key, *args)["rows"]
        return [(r.get("group", ""), r["succeeded"]) for r in rows]

    # The time before the restart comes from the rollups, the outage from the node's buffer.
    wait_until(lambda: counts("--window", "1h") == [("", "35")], what="35 tasks over the last hour")
    wait_until(lambda: counts("--window", "1h", "--by", "dc") == [("us-east", "35")], what="35 in us-east")
    stub = stats_pb2_grpc.StatsServiceStub(rpc.make_channel(coord.target))
    series = stub.QueryRange(stats_pb2.QueryRangeRequest(queue=key, range="1h"), timeout=10)
    assert series.step_seconds == 60 and len(series.series[0].points) in (60, 61)
    assert sum(p.succeeded for p in series.series[0].points) == 35


def test_octoctl_stats_and_top(procs: Processes, stub: tuple, tmp_path: Path, key: str) -> None:
    coord, stats = stub
    procs.node(coord.target, "east", ["dc=us-east"])
    url = f"sqlite:///{tmp_path / 'queues.db'}"
    octoctl(coord.target, "queue", "add", key, "--backend", "sqlite", "--url", url)
    enqueue(url, key, 0.01, 12)
    wait_until(lambda: finished(stats, key) == 12, what="12 tasks in the stats")

    listed = octoctl_json(coord.target, "stats", "--by", "dc", "--window", "10m")
    rows = listed["rows"]
    assert [(r["queue"], r["group"], r["succeeded"]) for r in rows] == [(key, "us-east", "12")]
    assert set(rows[0]["run_time"]) == {"p50", "p90", "p99", "p999", "mean", "count"}
    assert listed["window_seconds"] == 600 and [(t["group"], t["succeeded"]) for t in listed["totals"]] == [
        ("us-east", "12")]
    table = octoctl(coord.target, "stats").stdout
    assert "RUN P50" in table and key in table and "(all)" in table

    # A queue without activity shows with its state; a deleted one leaves at once.
    octoctl(coord.target, "queue", "add", f"{key}-idle", "--backend", "sqlite", "--url", url,
            "--selector", "dc=nowhere")
    states = {r["queue"]: r["state"] for r in octoctl_json(coord.target, "stats")["rows"]}
    assert states == {key: "serving", f"{key}-idle": "unserved"}

    out = octoctl(coord.target, "top", "--iterations", "2").stdout
    assert out.count("octobot top") == 2 and out.count("totals by dc") == 2
    queue_lines = [line for line in out.splitlines() if line.startswith(key + " ")]
    assert len(queue_lines) == 2 and all(" 12 " in line and "serving" in line for line in queue_lines)
    assert sum(line.startswith(f"{key}-idle") and "unserved" in line for line in out.splitlines()) == 2
    # At 80 columns every line fits, with the columns that matter most.
    narrow = octoctl(coord.target, "top", "--iterations", "1", env={"COLUMNS": "80"}).stdout
    assert max(map(len, narrow.splitlines())) <= 80, narrow
    [line] = [line for line in narrow.splitlines() if line.startswith(key + " ")]
    assert "serving" in line and " 12 " in line and "BACKLOG" in narrow and "E2E P99" not in narrow
    # Every table says its window, and how much of it the figures cover.
    assert octoctl(coord.target, "stats", "--window", "24h").stdout.startswith("last 86400s, covering ")
    octoctl(coord.target, "queue", "rm", key, "--yes")
    assert [r["queue"] for r in octoctl_json(coord.target, "stats", "--window", "10m")["rows"]] == [f"{key}-idle"]
    assert octoctl_json(coord.target, "stats", "--by", "dc", "--window", "10m")["rows"] == []
    assert any(ch in out for ch in "▂▃▄▅▆▇█"), "the sparkline shows the burst"
    assert "us-east" in out


def test_top_exits_cleanly_on_ctrl_c(stub: tuple) -> None:
    coord, _ = stub
    main, child = pty.openpty()
    # A suite started in the background inherits SIGINT ignored (as shells do for
    # background jobs), and Python then leaves it ignored: give top a terminal's default.
    proc = subprocess.Popen([sys.executable, "-m", "octobot.ctl.main", "--coordinator", coord.target, "top"],
                            stdin=child, stdout=child, stderr=child, env={**os.environ, "TERM": "xterm"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(child)
    screen = b""
    try:
        while b"totals" not in screen:  # no node has a dc label: cluster totals
            screen += os.read(main, 65536)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        os.close(main)


def test_top_says_once_that_the_coordinator_is_unreachable(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = octoctl(f"127.0.0.1:{port}", "top", check=False)
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: cannot reach coordinator")
    assert json.dumps(result.stdout) == '""'
