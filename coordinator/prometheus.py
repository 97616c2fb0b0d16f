"""Prometheus exposition on ``--metrics-listen``: a collector that reads the
coordinator's own aggregates at scrape time (on the event loop, which owns
them) instead of keeping a second copy in client metrics.

Counts are per queue, node and dc; latency histograms per queue and dc (per
node they would be 1,000 nodes x 20 queues x 3 kinds x 17 buckets series).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from octobot.coordinator.app import Coordinator
from octobot.coordinator.stats import PROMETHEUS_DIM
from octobot.coordinator.stats_bucket import COUNTS
from octobot.histogram import Histogram
from octobot.v1 import admin_pb2

# Upper bounds (seconds) of the exposed latency buckets.
BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
LE = [*(str(b) for b in BOUNDS), "+Inf"]
KINDS = (("run", "octobot_task_run_seconds", "Task run time (start to end)"),
         ("wait", "octobot_task_wait_seconds", "Time from enqueue to task start"),
         ("e2e", "octobot_task_end_to_end_seconds", "Time from enqueue to task end"))
DC = PROMETHEUS_DIM


def cumulative_buckets(h: Histogram) -> list[int]:
    """Values at or below each bound (the bucket midpoints decide, within 1 %), then +Inf."""
    values, counts = h.sorted_buckets()
    running = np.concatenate(([0], np.cumsum(counts))) + h.zero_count
    return [*running[np.searchsorted(values, BOUNDS, side="right")].tolist(), h.count]


@dataclass
class Scrape:
    """What one scrape shows, copied on the event loop."""

    totals: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    per_node: list[tuple[str, str, int, int]] = field(default_factory=list)  # queue, node, in flight, busy
    backlogs: dict[str, int] = field(default_factory=dict)
    # (queue, dc) -> kind -> (cumulative bucket counts, sum)
    latency: dict[tuple[str, str], dict[str, tuple[list[int], float]]] = field(default_factory=dict)
    nodes: list[tuple[str, str, bool, int]] = field(default_factory=list)  # id, dc, up, applied generation
    dcs: dict[str, str] = field(default_factory=dict)
    generation: int = 0
    samples: int = 0


async def take_scrape(app: Coordinator) -> Scrape:
    """A copy of what a scrape shows. With 1,000 nodes that is tens of thousands of
    counters: the copying takes turns with the other background work."""
    stats = app.stats
    _, generation = await app.db(app.store.snapshot)
    records = await app.db(app.store.list_nodes)
    scrape = Scrape(generation=generation)
    async with stats.lane.turn():
        pace = stats.lane.pace
        scrape.samples = stats.samples
        scrape.dcs = {r.node_id: r.labels.get(DC, "") for r in records}
        for r in records:
            session = app.sessions.get(r.node_id)
            scrape.nodes.append((r.node_id, scrape.dcs[r.node_id],
                                 app.sessions.state(r.node_id) == admin_pb2.NODE_STATE_UP,
                                 session.applied_generation if session else 0))
        await pace()
        for i, (key, counts) in enumerate(list(stats.totals.items())):
            scrape.totals[key] = list(counts)
            if i % 1000 == 999:
                await pace()
        scrape.per_node = sorted(stats.gauges.per_node())
        await pace()
        scrape.backlogs = {q: stats.gauges_now(q, "", "").backlog for q, _ in stats.series_keys("")}
        for (q, v), b in list(stats.cumulative.items()):
            scrape.latency[(q, v)] = {kind: (cumulative_buckets(getattr(b, kind)), getattr(b, kind).sum)
                                      for kind, _, _ in KINDS}
            await pace()
    return scrape


class StatsCollector(Collector):
    def __init__(self, app: Coordinator, loop: asyncio.AbstractEventLoop) -> None:
        self.app, self.loop = app, loop

    def collect(self) -> Iterator[Metric]:
        scrape = asyncio.run_coroutine_threadsafe(take_scrape(self.app), self.loop).result(timeout=10)
        tasks = CounterMetricFamily("octobot_tasks", "Tasks by outcome since the coordinator started",
                                    labels=["queue", "node", "dc", "outcome"])
        for (queue, node), counts in sorted(scrape.totals.items()):
            for outcome, n in zip(COUNTS, counts):
                tasks.add_metric([queue, node, scrape.dcs.get(node, ""), outcome], n)
        yield tasks
        in_flight = GaugeMetricFamily("octobot_in_flight", "Tasks held by a node now (running or buffered)",
                                      labels=["queue", "node", "dc"])
        busy = GaugeMetricFamily("octobot_busy_slots", "Slots running a task now", labels=["queue", "node", "dc"])
        backlog = GaugeMetricFamily("octobot_backlog", "Messages waiting in the broker (-1: unknown)",
                                    labels=["queue"])
        for queue, node, f, b in scrape.per_node:
            in_flight.add_metric([queue, node, scrape.dcs.get(node, "")], f)
            busy.add_metric([queue, node, scrape.dcs.get(node, "")], b)
        for queue, depth in sorted(scrape.backlogs.items()):
            backlog.add_metric([queue], depth)
        yield from (in_flight, busy, backlog)
        for kind, name, help_text in KINDS:
            family = HistogramMetricFamily(name, help_text, labels=["queue", "dc"])
            for (queue, dc), kinds in sorted(scrape.latency.items()):
                counts, total = kinds[kind]
                family.add_metric([queue, dc], list(zip(LE, counts)), total)
            yield family
        up = GaugeMetricFamily("octobot_node_up", "1 while the node heartbeats, else 0", labels=["node", "dc"])
        applied = GaugeMetricFamily("octobot_node_applied_generation", "Assignment generation the node runs",
                                    labels=["node", "dc"])
        for node, dc, is_up, generation in scrape.nodes:
            up.add_metric([node, dc], 1 if is_up else 0)
            applied.add_metric([node, dc], generation)
        yield from (up, applied)
        yield GaugeMetricFamily("octobot_assignment_generation", "Generation of the desired state",
                                value=scrape.generation)
        yield CounterMetricFamily("octobot_stats_samples", "Node queue samples ingested", value=scrape.samples)


def serve_metrics(app: Coordinator, listen: str, loop: asyncio.AbstractEventLoop) -> tuple[object, int]:
    """Start the HTTP exposition thread; returns the server and its port."""
    host, port = listen.rsplit(":", 1)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(app, loop))
    server, _ = start_http_server(int(port), addr=host.strip("[]"), registry=registry)
    return server, server.server_port
