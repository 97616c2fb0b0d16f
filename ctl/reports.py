"""`octoctl stats`, `top` and `history`: what the cluster did."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import click

from octobot.ctl.cluster import Cluster, pass_cluster
from octobot.ctl.output import QUEUE_STATES, emit, ms, output_option, to_dict, when, window_line
from octobot.v1 import admin_pb2, stats_pb2


def every_queue(reports: Iterable[stats_pb2.QueueReport], states: Mapping[str, str]) -> list[stats_pb2.QueueReport]:
    """A row per queue that exists, by name: its report, or an empty one if it
    had no activity in the window (an unserved queue shows too); reports of
    queues deleted since are left out."""
    rows = {r.queue: r for r in reports if r.queue in states}
    return [rows.get(name) or stats_pb2.QueueReport(queue=name, backlog=-1) for name in sorted(states)]



STATS_COLUMNS = ["QUEUE", "STATE", "GROUP", "RATE/S", "SUCCEEDED", "FAILED", "RETRIED", "DEAD", "REJECTED", "IN-FLIGHT",
                 "BUSY", "BACKLOG", "RUN P50", "RUN P99", "WAIT P99", "E2E P50", "E2E P99"]


def _queue_states(cluster: Cluster) -> dict[str, str]:
    """Each queue's state (serving, unserved, paused, broker error), by name."""
    resp = cluster.call(cluster.admin.ListQueues, admin_pb2.ListQueuesRequest())
    return {h.queue: QUEUE_STATES.get(h.state, "?") for h in resp.health}


def _stats_row(r: stats_pb2.QueueReport, states: dict[str, str]) -> list[Any]:
    return [r.queue or "(all)", states.get(r.queue, "-"), r.group or "-", f"{r.rate:.1f}", r.succeeded, r.failed, r.retried, r.dead_lettered,
            r.rejected, r.in_flight, r.busy_slots, r.backlog, ms(r.run_time.p50), ms(r.run_time.p99),
            ms(r.wait_time.p99), ms(r.end_to_end.p50), ms(r.end_to_end.p99)]


@click.command()
@click.option("--queue", "queue_name", default=None, help="only this queue")
@click.option("--by", default="", help="group rows by 'node' or a node label such as 'dc'")
@click.option("--window", default="1m", show_default=True, help="time window: 10s, 1m, 15m, 1h, 24h")
@output_option
@pass_cluster
def stats(cluster: Cluster, queue_name: str | None, by: str, window: str, output: str) -> None:
    """Throughput, outcomes and latency per queue (JSON: the window, a row per
    queue or group, and the totals)."""
    if queue_name:
        resp = cluster.call(cluster.stats.GetQueueStats, stats_pb2.GetQueueStatsRequest(queue=queue_name, window=window,
                                                                                    by=by))
        rows, totals = (list(resp.groups) if by else [resp.total]), []
        seconds, covered = resp.window_seconds, resp.covered_seconds
    else:
        cluster_resp = cluster.call(cluster.stats.GetCluster, stats_pb2.GetClusterRequest(window=window, by=by))
        rows, totals = list(cluster_resp.groups if by else cluster_resp.queues), list(cluster_resp.totals)
        seconds, covered = cluster_resp.window_seconds, cluster_resp.covered_seconds
    states = _queue_states(cluster)
    rows = [r for r in rows if r.queue in states] if queue_name or by else every_queue(rows, states)
    data = {"window_seconds": seconds, "covered_seconds": covered,
            "rows": [{**to_dict(r), "state": states[r.queue]} for r in rows], "totals": [to_dict(r) for r in totals]}
    if output == "table":
        click.echo(window_line(seconds, covered))
    emit(output, data, STATS_COLUMNS, [_stats_row(r, states) for r in rows + totals])


@click.command()
@click.option("--by", default=None, help="node label (or 'node') for the totals [default: dc, if nodes have it]")
@click.option("--window", default="1m", show_default=True, help="window of the figures")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="print this many frames to stdout and exit, instead of a live view")
@pass_cluster
def top(cluster: Cluster, by: str | None, window: str, iterations: int | None) -> None:
    """A live view of the cluster, refreshed every second; Ctrl-C quits."""
    if by is None:
        nodes = cluster.call(cluster.admin.ListNodes, admin_pb2.ListNodesRequest()).nodes
        by = "dc" if any("dc" in n.labels for n in nodes) else ""
    watch = stats_pb2.WatchRequest(window=window, by=by, interval_seconds=1.0, recent="1m")
    from octobot.ctl.top import run_top  # rich's live view: only for top

    run_top(cluster.watch(watch), by, iterations, lambda: _queue_states(cluster))


@click.command()
@click.option("--limit", default=50, show_default=True, help="newest entries to show")
@output_option
@pass_cluster
def history(cluster: Cluster, limit: int, output: str) -> None:
    """The audit log of admin changes, newest first."""
    entries = cluster.call(cluster.admin.ListAudit, admin_pb2.ListAuditRequest(limit=limit)).entries
    emit(output, [to_dict(e) for e in entries], ["AT", "ACTOR", "ACTION", "TARGET", "DETAIL"],
         [[when(e.at), e.actor, e.action, e.target, e.detail] for e in entries])
