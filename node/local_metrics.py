"""A standalone node's own statistics endpoint (the original Octobot's
introspection port): `/metrics` in Prometheus text, with the coordinator's
metric names (one dashboard serves both), and `/` as a JSON document with
per-queue totals, rates and latency percentiles over the last minute."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from octobot.histogram import Histogram
from octobot.http_pages import serve_pages
from octobot.outcomes import (
    IMPLAUSIBLE, IMPLAUSIBLE_HELP, LATENCIES, LATENCY_HELP, LATENCY_METRICS, OUTCOMES, PROMETHEUS_BOUNDS,
    SAMPLE_COUNTS)
from octobot.rpc import ServerTls
from octobot.v1 import node_pb2

WINDOW = 60.0
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}


@dataclass
class _Queue:
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SAMPLE_COUNTS, 0))
    gauges: dict[str, int] = field(default_factory=lambda: {"in_flight": 0, "busy_slots": 0, "backlog": -1})
    # (time, finished, {latency: histogram}) per report, for the last WINDOW seconds.
    recent: deque[tuple[float, int, dict[str, Histogram]]] = field(default_factory=deque)
    # Since the node started, for Prometheus.
    cumulative: dict[str, Histogram] = field(default_factory=lambda: {k: Histogram() for k in LATENCIES})


class LocalStats:
    """Totals since start and the last minute's latencies, per queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue] = {}
        self.started = time.time()

    def add(self, report: node_pb2.StatsReport) -> None:
        now = time.time()
        with self._lock:
            for s in report.samples:
                q = self._queues.setdefault(s.queue, _Queue())
                for name in SAMPLE_COUNTS:
                    q.totals[name] += getattr(s, name)
                q.gauges = {"in_flight": s.in_flight, "busy_slots": s.busy_slots, "backlog": s.backlog}
                hists = {name: Histogram.from_proto(getattr(s, name)) for name in LATENCIES}
                q.recent.append((now, s.succeeded + s.failed, hists))
                for name, h in hists.items():
                    q.cumulative[name].merge(h)
                while q.recent and q.recent[0][0] < now - WINDOW:
                    q.recent.popleft()

    def since_start(self) -> dict[str, tuple[dict[str, int], dict[str, int], dict[str, tuple[list[int], float]]]]:
        """Per queue: totals, gauges, and each latency's Prometheus buckets and sum."""
        with self._lock:
            return {name: (dict(q.totals), dict(q.gauges),
                           {k: (h.cumulative_counts(PROMETHEUS_BOUNDS), h.sum) for k, h in q.cumulative.items()})
                    for name, q in sorted(self._queues.items())}

    def snapshot(self) -> dict[str, Any]:
        """The JSON document: uptime and, per queue, totals, rate, gauges, percentiles."""
        with self._lock:
            queues = {}
            for name, q in sorted(self._queues.items()):
                merged = {k: Histogram() for k in LATENCIES}
                for _, _, hists in q.recent:
                    for k, h in hists.items():
                        merged[k].merge(h)
                span = min(WINDOW, max(1.0, time.time() - self.started))
                queues[name] = {
                    **q.totals, **q.gauges,
                    "rate_per_second": sum(n for _, n, _ in q.recent) / span,
                    **{k: {label: h.quantile(q) for label, q in QUANTILES.items()} | {"count": h.count}
                       for k, h in merged.items()},
                }
        return {"uptime_seconds": time.time() - self.started, "window_seconds": WINDOW, "queues": queues}


class _Collector(Collector):
    def __init__(self, stats: LocalStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        queues = self.stats.since_start()
        tasks = CounterMetricFamily("octobot_tasks", "Tasks by outcome since the node started",
                                    labels=["queue", "outcome"])
        for queue, (totals, _, _) in queues.items():
            for outcome in OUTCOMES:
                tasks.add_metric([queue, outcome], totals[outcome])
        yield tasks
        implausible = CounterMetricFamily("octobot_implausible_enqueue_times", IMPLAUSIBLE_HELP, labels=["queue"])
        for queue, (totals, _, _) in queues.items():
            implausible.add_metric([queue], totals[IMPLAUSIBLE])
        yield implausible
        for name, help_text in (("in_flight", "Tasks held now (running or buffered)"),
                                ("busy_slots", "Slots running a task now"),
                                ("backlog", "Messages waiting in the broker (-1: unknown)")):
            family = GaugeMetricFamily(f"octobot_{name}", help_text, labels=["queue"])
            for queue, (_, gauges, _) in queues.items():
                family.add_metric([queue], gauges[name])
            yield family
        for kind, name, help_text in zip(LATENCIES, LATENCY_METRICS, LATENCY_HELP):
            family = HistogramMetricFamily(name, help_text, labels=["queue"])
            for queue, (_, _, hists) in queues.items():
                counts, total = hists[kind]
                family.add_metric([queue], [*zip([str(b) for b in PROMETHEUS_BOUNDS], counts), ("+Inf", counts[-1])],
                                  total)
            yield family


def serve(stats: LocalStats, listen: str, tls: ServerTls | None = None) -> tuple[ThreadingHTTPServer, int]:
    """Serve `/metrics` and `/` on ``listen`` (host:port, port 0 picks one; HTTPS with ``tls``) in a daemon thread."""
    registry = CollectorRegistry()
    registry.register(_Collector(stats))

    def metrics() -> tuple[bytes, str]:
        return generate_latest(registry), "text/plain; version=0.0.4"

    def status() -> tuple[bytes, str]:
        return json.dumps(stats.snapshot(), indent=2).encode(), "application/json"

    return serve_pages(listen, {"/metrics": metrics, "/": status, "/stats.json": status}, tls)
