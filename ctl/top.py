"""`octoctl top`: the cluster at a glance, redrawn from StatsService.Watch.

One row per queue (rate, a sparkline of the last minute, outcomes, backlog,
latency) and one per group of the totals (datacenters by default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from rich.console import Group
from rich.live import Live
from rich.table import Table

from octobot.ctl.output import console, ms, when, window_line
from octobot.ctl.reports import every_queue
from octobot.v1 import stats_pb2

TICKS = "▁▂▃▄▅▆▇█"
# Below this many columns, top keeps the columns that matter most and a shorter sparkline.
WIDE = 120
NARROW_COLUMNS = ("STATE", "RATE/S", "LAST MINUTE", "OK", "FAILED", "BACKLOG", "RUN P99")
NARROW_SPARK = 10


def sparkline(values: list[float], width: int | None = None) -> str:
    """One character per value (per group of values, to fit ``width``), scaled to the largest."""
    if width is not None and len(values) > width:
        step = -(-len(values) // width)
        values = [max(values[i:i + step]) for i in range(0, len(values), step)]
    top = max(values, default=0.0)
    if top <= 0:
        return TICKS[0] * len(values)
    return "".join(TICKS[min(len(TICKS) - 1, int(v / top * (len(TICKS) - 1) + 0.5))] for v in values)


def _table(title: str, first: str, rows: Iterable[tuple[str, stats_pb2.QueueReport]],
           sparks: dict[str, str] | None = None, states: Mapping[str, str] | None = None) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    cells: dict[str, Callable[[str, stats_pb2.QueueReport], str]] = {
        "STATE": lambda name, r: states.get(name, "?") if states is not None else "",
        "RATE/S": lambda name, r: f"{r.rate:.1f}",
        "LAST MINUTE": lambda name, r: sparks.get(name, "") if sparks is not None else "",
        "OK": lambda name, r: str(r.succeeded),
        "FAILED": lambda name, r: str(r.failed),
        "DEAD": lambda name, r: str(r.dead_lettered),
        "IN-FLIGHT": lambda name, r: str(r.in_flight),
        "BACKLOG": lambda name, r: "?" if r.backlog < 0 else str(r.backlog),
        "RUN P50": lambda name, r: ms(r.run_time.p50),
        "RUN P99": lambda name, r: ms(r.run_time.p99),
        "E2E P99": lambda name, r: ms(r.end_to_end.p99),
    }
    shown = [c for c in cells if (c != "STATE" or states is not None) and (c != "LAST MINUTE" or sparks is not None)
             and (console().width >= WIDE or c in NARROW_COLUMNS)]
    for column in [first, *shown]:
        table.add_column(column, no_wrap=True, justify="left" if column in (first, "STATE", "LAST MINUTE") else "right")
    for name, r in rows:
        table.add_row(name or "(none)", *(cells[c](name, r) for c in shown))
    return table


def render(resp: stats_pb2.WatchResponse, by: str, states: Mapping[str, str]) -> Group:
    snap = resp.snapshot
    width = None if console().width >= WIDE else NARROW_SPARK
    sparks = {s.queue: sparkline([p.rate for p in s.points], width) for s in resp.recent}
    at = when(resp.at)
    queues = _table(f"octobot top — {at}, {window_line(snap.window_seconds, snap.covered_seconds)}", "QUEUE",
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
                console().print(render(resp, by, states()))
            return
        with Live(console=console(), auto_refresh=False, screen=False) as live:
            for resp in snapshots:
                live.update(render(resp, by, states()), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        close = getattr(snapshots, "close", None)
        if close is not None:
            close()
