"""Gauges now: what each node last said of each queue (tasks in flight, busy
slots, broker backlog), and totals per queue and per (queue, label value),
kept up to date as reports arrive so a query never walks every node. A node
silent for GAUGE_TTL seconds stops counting: it holds nothing in flight."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass


GAUGE_TTL = 5.0
NODE = "node"

Dims = tuple[tuple[str, str], ...]  # a node's labels, as (dim, value) pairs
TotalKey = tuple[str, str, str]  # (queue, dim, value); dim "" for the whole queue


@dataclass(slots=True)
class GaugeTotal:
    in_flight: int = 0
    busy_slots: int = 0
    # The newest report's: nodes sharing a queue see the same broker backlog.
    backlog: int = -1
    nodes: int = 0
    backlog_second: int = -1


@dataclass(slots=True)
class _Gauge:
    in_flight: int
    busy_slots: int
    backlog: int
    second: int  # report time, so a replayed old report never overwrites a newer one
    arrived: float
    dims: Dims
    counted: tuple[TotalKey, ...] = ()  # the totals it is in; empty while stale


class Gauges:
    def __init__(self) -> None:
        self._by_node: dict[tuple[str, str], _Gauge] = {}
        self._totals: dict[TotalKey, GaugeTotal] = {}
        self._nodes: dict[str, tuple[float, Dims]] = {}  # node id -> (last report, labels)

    def seen(self, node_id: str, dims: Dims, now: float) -> None:
        self._nodes[node_id] = (now, dims)

    def set(self, queue: str, node_id: str, dims: Dims, in_flight: int, busy_slots: int, backlog: int,
            second: int, now: float) -> None:
        """What a node reports of a queue at ``second``; called for every sample."""
        g = self._by_node.get((queue, node_id))
        if g is None:
            g = self._by_node[(queue, node_id)] = _Gauge(in_flight, busy_slots, backlog, second, now, dims)
        elif second < g.second:
            return
        elif g.counted and g.dims is dims:
            # Counted already: move the totals by the difference.
            for key in g.counted:
                t = self._totals[key]
                t.in_flight += in_flight - g.in_flight
                t.busy_slots += busy_slots - g.busy_slots
                if second >= t.backlog_second:
                    t.backlog, t.backlog_second = backlog, second
            g.in_flight, g.busy_slots, g.backlog, g.second, g.arrived = in_flight, busy_slots, backlog, second, now
            return
        else:
            self._count(g, -1)
            g.in_flight, g.busy_slots, g.backlog, g.second, g.arrived, g.dims = (
                in_flight, busy_slots, backlog, second, now, dims)
        g.counted = ((queue, "", ""), *((queue, dim, value) for dim, value in dims))
        self._count(g, 1)

    def _count(self, g: _Gauge, sign: int) -> None:
        for key in g.counted:
            t = self._totals.get(key)
            if t is None:
                t = self._totals[key] = GaugeTotal()
            t.in_flight += sign * g.in_flight
            t.busy_slots += sign * g.busy_slots
            t.nodes += sign
            if sign > 0 and g.second >= t.backlog_second:
                t.backlog, t.backlog_second = g.backlog, g.second
        if sign < 0:
            g.counted = ()

    async def expire(self, now: float, forget_after: float, pace: Callable[[], Awaitable[None]]) -> None:
        """Stop counting silent nodes; forget them entirely after ``forget_after`` seconds.
        A pass visits every (queue, node): ``pace`` is awaited between chunks of them."""
        for i, (key, g) in enumerate(list(self._by_node.items())):
            age = now - g.arrived
            if age > GAUGE_TTL and g.counted:
                self._count(g, -1)
            if age > forget_after:
                del self._by_node[key]
            if i % 1000 == 999:
                await pace()
        for node_id, (arrived, _) in list(self._nodes.items()):
            if now - arrived > forget_after:
                del self._nodes[node_id]

    def total(self, queue: str, dim: str, value: str, now: float) -> GaugeTotal:
        """Gauges of a queue (or of all queues, with ``queue`` empty) on the nodes
        ``dim=value`` names: all of them, one node (dim "node"), or a label value."""
        if dim == NODE:
            if queue:
                mine = [g for g in (self._by_node.get((queue, value)),) if g is not None]
            else:
                mine = [g for (_, n), g in self._by_node.items() if n == value]
            fresh = [g for g in mine if g.counted]
            return GaugeTotal(sum(g.in_flight for g in fresh), sum(g.busy_slots for g in fresh),
                              _backlog(g.backlog for g in mine), 1 if fresh else 0)
        if queue:
            return self._totals.get((queue, dim, value)) or GaugeTotal()
        every = GaugeTotal(nodes=sum(1 for arrived, dims in self._nodes.values()
                                     if now - arrived <= GAUGE_TTL and (not dim or (dim, value) in dims)))
        parts = [t for (_, d, v), t in self._totals.items() if d == dim and v == value]
        every.in_flight = sum(t.in_flight for t in parts)
        every.busy_slots = sum(t.busy_slots for t in parts)
        every.backlog = _backlog(t.backlog for t in parts)
        return every

    def per_node(self) -> list[tuple[str, str, int, int]]:
        """(queue, node id, in flight, busy slots) of every node counting now."""
        return [(q, n, g.in_flight, g.busy_slots) for (q, n), g in self._by_node.items() if g.counted]


def _backlog(values: Iterable[int]) -> int:
    """The sum of the known backlogs, -1 when none is known."""
    known = [v for v in values if v >= 0]
    return sum(known) if known else -1
