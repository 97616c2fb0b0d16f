"""Each queue's backlog, measured by the coordinator itself.

Nodes report the backlog they see, but only while a node serves the queue,
and a restarted coordinator knows nothing until they do. So every few
seconds the coordinator asks each queue's broker for its depth over its own
connection (coordinator/brokers.py: each broker on threads of its own, every
call with a deadline). A queue whose broker cannot be asked (down, a URL with
secrets only nodes resolve, a SQLite file outside --sqlite-queue-dir) keeps
its last measure, or falls back to what nodes report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from octobot.coordinator.brokers import Brokers
from octobot.coordinator.store import StoreDown
from octobot.v1 import queue_pb2

log = logging.getLogger("octobot.coordinator")

PROBE_EVERY = 5.0


class Backlogs:
    """The last depth measured of each queue, by name."""

    def __init__(self) -> None:
        self._depths: dict[str, int] = {}

    def get(self, queue: str) -> int | None:
        return self._depths.get(queue)

    def names(self) -> set[str]:
        return set(self._depths)

    def total(self, queues: list[str]) -> int | None:
        """The sum over ``queues``, if each was measured."""
        depths = [self._depths.get(q) for q in queues]
        return None if not depths or None in depths else sum(depths)  # type: ignore[arg-type]

    async def probe(self, brokers: Brokers, queues: list[queue_pb2.QueueSpec]) -> None:
        """Measure every queue at once (each broker's calls on its own threads)."""
        async def depth(spec: queue_pb2.QueueSpec) -> int | None:
            try:
                return await brokers.call(spec, lambda backend: backend.depth())
            except Exception as exc:  # unreachable, or not the coordinator's to reach
                log.debug("backlog of queue %s not measured: %s", spec.name, exc)
                return None

        measured = await asyncio.gather(*(depth(spec) for spec in queues))
        self._depths = {spec.name: depth if depth is not None else self._depths[spec.name]
                        for spec, depth in zip(queues, measured)
                        if depth is not None or spec.name in self._depths}

    async def run(self, brokers: Brokers, queues: Callable[[], Awaitable[list[queue_pb2.QueueSpec]]],
                  every: float = PROBE_EVERY) -> None:
        """Probe the queues ``queues`` gives every ``every`` seconds."""
        while True:
            try:
                await self.probe(brokers, await queues())
            except StoreDown:
                pass  # said once by Coordinator.db; measured again once it is back
            except Exception:  # a bug must not end the measuring for good
                log.exception("measuring queue backlogs")
            await asyncio.sleep(every)
