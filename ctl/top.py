"""`octoctl top`: the cluster at a glance, redrawn from StatsService.Watch.

One row per queue (rate, a sparkline of the last minute, outcomes, backlog,
latency) and one per group of the totals (datacenters by default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from rich.console import Group
from rich.live import Live
from rich.table import Table

from octobot.ctl.output import console, ms
from octobot.v1 import stats_pb2

TICKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One character per value, scaled to the largest."""
    top = max(values, default=0.0)
    if top <= 0:
        return TICKS[0] * len(values)
    return "".join(TICKS[min(len(TICKS) - 1, int(v / top * (len(TICKS) - 1) + 0.5))] for v in values)


def _table(title: str, first: str, rows: Iterable[tuple[str, stats_pb2.QueueReport]],
           sparks: dict[str, str] | None = None, states: Mapping[str, str] | None = None) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for column in [first, *(["STATE"] if states is not None else []), "RATE/S",
                   *(["LAST MINUTE"] if sparks is not None else []), "OK", "FAILED", "DEAD",
                   "IN-FLIGHT", "BACKLOG", "RUN P50", "RUN P99", "E2E P99"]:
        table.add_column(column, no_wrap=True, justify="left" if column in (first, "STATE", "LAST MINUTE") else "right")
    for name, r in rows:
        spark = [sparks.get(name, "")] if sparks is not None else []
        state = [states.get(name, "?")] if states is not None else []
        table.add_row(name or "(none)", *state, f"{r.rate:.1f}", *spark, str(r.succeeded), str(r.failed),
                      str(r.dead_lettered), str(r.in_flight), "?" if r.backlog < 0 else str(r.backlog),
                      ms(r.run_time.p50), ms(r.run_time.p99), ms(r.end_to_end.p99))
    return table


def every_queue(reports: Iterable[stats_pb2.QueueReport], states: Mapping[str, str]) -> list[stats_pb2.QueueReport]:
    """A row per queue that exists, by name: its report, or an empty one if it
    had no activity in the window (an unserved queue shows too); reports of
    queues deleted since are left out."""
    rows = {r.queue: r for r in reports if r.queue in states}
    return [rows.get(name) or stats_pb2.QueueReport(queue=name, backlog=-1) for name in sorted(states)]


def render(resp: stats_pb2.WatchResponse, by: str, states: Mapping[str, str]) -> Group:
    snap = resp.snapshot
    sparks = {s.queue: sparkline([p.rate for p in s.points]) for s in resp.recent}
    at = resp.at.ToDatetime().strftime("%H:%M:%S")
    queues = _table(f"octobot top — {at} UTC, last {snap.window_seconds:g}s", "QUEUE",
                    ((r.queue, r) for r in every_queue(snap.queues, states)), sparks, states)
    totals = _table(f"totals by {by}" if by else "totals", by.upper() or "CLUSTER",
                    ((r.group, r) for r in snap.totals))
    return Group(queues, "", totals)


def run_top(snapshots: Iterator[stats_pb2.WatchResponse], by: str, iterations: int | None,
            states: Callable[[], Mapping[str, str]]) -> None:
    """Print ``iterations`` frames, or redraw in place until Ctrl-C; ``states``
    gives each queue's state (serving, unserved, ...) for a frame."""
    try:
        if iterations is not None:
            for _, resp in zip(range(iterations), snapshots):
                console.print(render(resp, by, states()))
            return
        with Live(console=console, auto_refresh=False, screen=False) as live:
            for resp in snapshots:
                live.update(render(resp, by, states()), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        close = getattr(snapshots, "close", None)
        if close is not None:
            close()
