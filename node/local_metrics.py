"""A standalone node's own statistics endpoint (the original Octobot's
introspection port): `/metrics` in Prometheus text, `/` as a JSON document
with per-queue totals, rates and latency percentiles over the last minute."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from octobot.histogram import Histogram
from octobot.http_pages import serve_pages
from octobot.outcomes import IMPLAUSIBLE, IMPLAUSIBLE_HELP, OUTCOMES, SAMPLE_COUNTS
from octobot.rpc import ServerTls
from octobot.v1 import node_pb2

WINDOW = 60.0
LATENCIES = ("run_time", "wait_time", "end_to_end")
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}


@dataclass
class _Queue:
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SAMPLE_COUNTS, 0))
    gauges: dict[str, int] = field(default_factory=lambda: {"in_flight": 0, "busy_slots": 0, "backlog": -1})
    # (time, finished, {latency: histogram}) per report, for the last WINDOW seconds.
    recent: deque[tuple[float, int, dict[str, Histogram]]] = field(default_factory=deque)


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
                q.recent.append((now, s.succeeded + s.failed,
                                 {name: Histogram.from_proto(getattr(s, name)) for name in LATENCIES}))
                while q.recent and q.recent[0][0] < now - WINDOW:
                    q.recent.popleft()

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
        snap = self.stats.snapshot()["queues"]
        for name in OUTCOMES:
            family = CounterMetricFamily(f"octobot_tasks_{name}", f"Tasks {name.replace('_', ' ')}", labels=["queue"])
            for queue, q in snap.items():
                family.add_metric([queue], q[name])
            yield family
        family = CounterMetricFamily("octobot_implausible_enqueue_times", IMPLAUSIBLE_HELP, labels=["queue"])
        for queue, q in snap.items():
            family.add_metric([queue], q[IMPLAUSIBLE])
        yield family
        for name in ("in_flight", "busy_slots", "backlog"):
            family = GaugeMetricFamily(f"octobot_queue_{name}", f"Current {name.replace('_', ' ')}", labels=["queue"])
            for queue, q in snap.items():
                family.add_metric([queue], q[name])
            yield family
        for name in LATENCIES:
            family = GaugeMetricFamily(f"octobot_task_{name}_seconds", f"Task {name.replace('_', ' ')} quantiles "
                                       f"over the last {WINDOW:.0f} s", labels=["queue", "quantile"])
            for queue, q in snap.items():
                for label, quantile in QUANTILES.items():
                    family.add_metric([queue, str(quantile)], q[name][label])
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
