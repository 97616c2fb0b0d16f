"""Nodes' stats reports on their way into the cluster's stats.

A report is queued as it arrives; a background turn of the stats lane takes
the queue in batches, checks each batch at once (report_checks) and ingests
what passes. One by one, the checks cost more than the ingest.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence

from octobot.coordinator.limits import Invalid, NodeLimits, Refusal
from octobot.coordinator.stats.report_checks import BATCH_SAMPLES, Samples, check_reports
from octobot.coordinator.stats.cluster import ClusterStats
from octobot.v1 import node_pb2

log = logging.getLogger("octobot.coordinator")

# Seconds a report may wait to be checked: far below the stats' GRACE.
EVERY = 0.05
# Reports waiting at most (20 s of 1,000 nodes): beyond, the coordinator is
# behind, and new ones are refused rather than queued without bound.
MAX_WAITING = 20_000

Arrival = tuple[str, dict[str, str], node_pb2.StatsReport, float]  # node id, its labels, report, when


def admitted(node_id: str, refusal: Refusal | None) -> bool:
    """Whether a node's message passed its bounds; a refusal is logged once per node and reason."""
    if refusal is not None and refusal.first:
        log.warning("node %s: refused a message (%s): %s; further ones are only counted "
                    "(octobot_rejected_node_messages_total)", node_id, refusal.reason, refusal.message)
    return refusal is None


class ReportIntake:
    def __init__(self, limits: NodeLimits, stats: ClusterStats) -> None:
        self.limits = limits
        self.stats = stats
        self._waiting: deque[Arrival] = deque()

    def put(self, node_id: str, labels: dict[str, str], report: node_pb2.StatsReport, now: float) -> None:
        if len(self._waiting) >= MAX_WAITING:
            admitted(node_id, self.limits.refusal(node_id, Invalid(
                "rate", f"the coordinator is {MAX_WAITING:,} reports behind; this one is dropped")))
            return
        self._waiting.append((node_id, labels, report, now))

    def admit(self, arrivals: Sequence[Arrival]) -> list[Samples | Refusal]:
        """Each report's checked samples, or why it is refused (counted)."""
        results: list[Samples | Refusal | None] = [None] * len(arrivals)
        rated = []
        for i, (node_id, _, _, now) in enumerate(arrivals):
            refusal = self.limits.refuse_rate(node_id, now)
            if refusal is None:
                rated.append(i)
            else:
                results[i] = refusal
        checked = check_reports([arrivals[i][2] for i in rated], [arrivals[i][3] for i in rated])
        for i, result in zip(rated, checked):
            node_id, now = arrivals[i][0], arrivals[i][3]
            if isinstance(result, Invalid):
                results[i] = self.limits.refusal(node_id, result)
            else:
                results[i] = self.limits.refuse_queues(node_id, set(result.queues), now) or result
        return results  # type: ignore[return-value]  # every slot is filled

    async def run(self, every: float = EVERY) -> None:
        while True:
            await asyncio.sleep(every)
            await self.drain()

    async def drain(self) -> None:
        """Check and ingest every waiting report, a batch per step of the lane."""
        async with self.stats.lane.turn():
            while self._waiting:
                batch, samples = [], 0
                while self._waiting and samples < BATCH_SAMPLES:
                    batch.append(self._waiting.popleft())
                    samples += len(batch[-1][2].samples)
                for (node_id, labels, _, now), result in zip(batch, self.admit(batch)):
                    if isinstance(result, Samples):
                        self.stats.ingest(node_id, labels, result, now)
                    else:
                        admitted(node_id, result)
                await self.stats.lane.pace()
