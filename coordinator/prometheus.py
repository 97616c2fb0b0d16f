"""Prometheus exposition on ``--metrics-listen``, in the text format, rendered
from the coordinator's own aggregates at scrape time instead of a second copy
kept in client metrics.

Counts are per queue, node and dc; latency histograms per queue and dc (per
node they would be 1,000 nodes x 20 queues x 3 kinds x 17 buckets series).
Even so, 1,000 nodes make a scrape of about 150,000 samples. Through
prometheus_client's metric objects that took 1.5 s of CPU in the HTTP thread,
holding the GIL, and a large garbage collection after it, while every RPC
waited. So the text is rendered on the event loop in turns of the stats lane,
a line per sample straight into a list of strings; the HTTP thread only sends
the bytes. The tests check the format with prometheus_client's parser.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from http.server import ThreadingHTTPServer


from octobot.coordinator.app import Coordinator
from octobot.coordinator.stats.cluster import PROMETHEUS_DIM
from octobot.histogram import Histogram
from octobot.outcomes import (IMPLAUSIBLE, IMPLAUSIBLE_HELP, LATENCY_HELP, LATENCY_METRICS, OUTCOMES, PROMETHEUS_BOUNDS,
                              SAMPLE_COUNTS)
from octobot.http_pages import Authorize, serve_pages
from octobot.rpc import ServerTls
from octobot.v1 import admin_pb2

LE = [*(str(b) for b in PROMETHEUS_BOUNDS), "+Inf"]
KINDS = tuple(zip(("run", "wait", "e2e"), LATENCY_METRICS, LATENCY_HELP))
DC = PROMETHEUS_DIM
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Samples rendered between turns of the lane.
CHUNK = 500
# Where a node's totals (SAMPLE_COUNTS) hold its implausible enqueue times.
IMPLAUSIBLE_AT = SAMPLE_COUNTS.index(IMPLAUSIBLE)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values))


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")


async def render(app: Coordinator) -> list[bytes]:
    """The exposition text of this moment, in chunks: no single step joins megabytes."""
    stats = app.stats
    queues, generation = await app.db(app.store.snapshot)
    labels = await app.db(app.store.node_labels)
    out: list[str] = []
    chunks: list[bytes] = []

    async def pace() -> None:
        chunks.append("".join(out).encode())
        out.clear()
        await stats.lane.pace()

    async with stats.lane.turn():
        dcs = {node: node_labels.get(DC, "") for node, node_labels in labels.items()}

        _family(out, "octobot_tasks_total", "counter", "Tasks by outcome since the coordinator started")
        for i, ((queue, node), counts) in enumerate(list(stats.totals.items())):
            head = f"octobot_tasks_total{{{_labels(('queue', 'node', 'dc'), (queue, node, dcs.get(node, '')))}"
            out.extend(f'{head},outcome="{outcome}"}} {n}\n' for outcome, n in zip(OUTCOMES, counts))
            if i % CHUNK == CHUNK - 1:
                await pace()

        _family(out, "octobot_implausible_enqueue_times_total", "counter", IMPLAUSIBLE_HELP)
        for (queue, node), counts in list(stats.totals.items()):
            if counts[IMPLAUSIBLE_AT]:
                labels = _labels(('queue', 'node', 'dc'), (queue, node, dcs.get(node, '')))
                out.append(f"octobot_implausible_enqueue_times_total{{{labels}}} {counts[IMPLAUSIBLE_AT]}\n")

        per_node = stats.gauges.per_node()
        for name, help_text, column in (("octobot_in_flight", "Tasks held by a node now (running or buffered)", 2),
                                        ("octobot_busy_slots", "Slots running a task now", 3)):
            _family(out, name, "gauge", help_text)
            for i, row in enumerate(per_node):
                queue, node = row[0], row[1]
                out.append(f"{name}{{{_labels(('queue', 'node', 'dc'), (queue, node, dcs.get(node, '')))}}} "
                           f"{row[column]}\n")
                if i % CHUNK == CHUNK - 1:
                    await pace()

        _family(out, "octobot_backlog", "gauge", "Messages waiting in the broker (-1: unknown)")
        for spec in queues:  # those that exist now: a deleted queue leaves at once
            backlog = app.backlogs.get(spec.name)
            if backlog is None:
                backlog = stats.gauges_now(spec.name, "", "").backlog
            out.append(f'octobot_backlog{{queue="{_escape(spec.name)}"}} {backlog}\n')

        cumulative = sorted(stats.cumulative.items())
        for kind, name, help_text in KINDS:
            _family(out, name, "histogram", help_text)
            for (queue, dc), bucket in cumulative:
                h: Histogram = getattr(bucket, kind)
                names = _labels(("queue", "dc"), (queue, dc))
                out.extend(f'{name}_bucket{{{names},le="{le}"}} {n}\n'
                           for le, n in zip(LE, h.cumulative_counts(PROMETHEUS_BOUNDS)))
                out.append(f"{name}_count{{{names}}} {h.count}\n{name}_sum{{{names}}} {h.sum!r}\n")
                await pace()

        _family(out, "octobot_node_up", "gauge", "1 while the node heartbeats, else 0")
        out.extend(f"octobot_node_up{{{_labels(('node', 'dc'), (node, dc))}}} "
                   f"{int(app.sessions.state(node) == admin_pb2.NODE_STATE_UP)}\n" for node, dc in dcs.items())
        _family(out, "octobot_node_applied_generation", "gauge", "Assignment generation the node runs")
        for node, dc in dcs.items():
            session = app.sessions.get(node)
            out.append(f"octobot_node_applied_generation{{{_labels(('node', 'dc'), (node, dc))}}} "
                       f"{session.applied_generation if session else 0}\n")
        _family(out, "octobot_handed_back_messages_total", "counter",
                "Messages a node handed back because their task is not registered there but is on "
                "another node of the queue (a rolling deploy)")
        for node, dc in dcs.items():
            session = app.sessions.get(node)
            for status in session.heartbeat.queues if session else ():
                if status.handed_back:
                    out.append(f"octobot_handed_back_messages_total"
                               f"{{{_labels(('queue', 'node', 'dc'), (status.queue, node, dc))}}} "
                               f"{status.handed_back}\n")
        health = app.sessions.health(queues)
        _family(out, "octobot_queue_unserved", "gauge",
                "1 while no node that is up runs the queue (and it is not paused): its messages wait")
        out.extend(f'octobot_queue_unserved{{queue="{_escape(h.queue)}"}} '
                   f'{int(h.state == admin_pb2.QUEUE_STATE_UNSERVED)}\n' for h in health)
        _family(out, "octobot_queue_broker_errors", "gauge", "Nodes running the queue that cannot reach its broker")
        out.extend(f'octobot_queue_broker_errors{{queue="{_escape(h.queue)}"}} {h.broker_errors}\n' for h in health)
        _family(out, "octobot_assignment_generation", "gauge", "Generation of the desired state")
        out.append(f"octobot_assignment_generation {generation}\n")
        _family(out, "octobot_stats_samples_total", "counter", "Node queue samples ingested")
        out.append(f"octobot_stats_samples_total {stats.samples}\n")
        _family(out, "octobot_rejected_node_messages_total", "counter",
                "Node stats reports and heartbeats refused: out of bounds, or over the report rate")
        out.extend(f"octobot_rejected_node_messages_total{{{_labels(('node', 'reason'), key)}}} {n}\n"
                   for key, n in sorted(app.limits.refused.items()))
        await pace()
    return chunks


def serve_metrics(app: Coordinator, listen: str, loop: asyncio.AbstractEventLoop, tls: ServerTls | None = None,
                  authorize: Authorize | None = None) -> tuple[ThreadingHTTPServer, int]:
    """Start the HTTP(S) exposition thread; returns the server and its port."""
    def metrics() -> tuple[list[bytes], str]:
        return asyncio.run_coroutine_threadsafe(render(app), loop).result(timeout=30), CONTENT_TYPE

    return serve_pages(listen, {"/metrics": metrics}, tls, authorize)
