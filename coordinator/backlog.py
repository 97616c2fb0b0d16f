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
from octobot.secrets import redact_url
from octobot.v1 import queue_pb2

log = logging.getLogger("octobot.coordinator")


def endpoint_specs(spec: queue_pb2.QueueSpec) -> list[tuple[str, queue_pb2.QueueSpec]]:
    """The queue at each of its URLs: ("", the default) and, on a named broker, each endpoint's."""
    out = [("", spec)]
    for endpoint in spec.endpoints:
        at = queue_pb2.QueueSpec()
        at.CopyFrom(spec)
        at.url = endpoint.url
        del at.endpoints[:]
        out.append((endpoint.selector, at))
    return out

PROBE_EVERY = 5.0


class Backlogs:
    """The last depth measured of each queue, by name: on a named broker with
    endpoints, the sum over its URLs, each measured on its own."""

    def __init__(self) -> None:
        self._depths: dict[tuple[str, str], int] = {}  # by queue and endpoint selector ("" the default URL)
        self._endpoints: dict[str, list[str]] = {}  # each queue's selectors, at the last probe

    def get(self, queue: str) -> int | None:
        """The queue's depth, once each of its URLs was measured."""
        depths = [self._depths.get((queue, selector)) for selector in self._endpoints.get(queue, ())]
        return None if not depths or None in depths else sum(depths)  # type: ignore[arg-type]

    def at(self, queue: str, selector: str) -> int | None:
        """The depth at one of the queue's URLs ("" its default)."""
        return self._depths.get((queue, selector))

    def names(self) -> set[str]:
        return {queue for queue in self._endpoints if self.get(queue) is not None}

    def total(self, queues: list[str]) -> int | None:
        """The sum over ``queues``, if each was measured."""
        depths = [self.get(q) for q in queues]
        return None if not depths or None in depths else sum(depths)  # type: ignore[arg-type]

    async def probe(self, brokers: Brokers, queues: list[queue_pb2.QueueSpec]) -> None:
        """Measure every queue, at each of its URLs, at once (each broker's calls on its own threads)."""
        async def depth(spec: queue_pb2.QueueSpec) -> int | None:
            try:
                return await brokers.call(spec, lambda backend: backend.depth())
            except Exception as exc:  # unreachable, or not the coordinator's to reach
                log.debug("backlog of queue %s at %s not measured: %s", spec.name, redact_url(spec.url), exc)
                return None

        places = [(spec.name, selector, at) for spec in queues for selector, at in endpoint_specs(spec)]
        measured = await asyncio.gather(*(depth(at) for _, _, at in places))
        depths = {}
        for (name, selector, _), found in zip(places, measured):
            last = self._depths.get((name, selector)) if found is None else found
            if last is not None:
                depths[name, selector] = last
        self._depths = depths
        self._endpoints = {spec.name: [selector for selector, _ in endpoint_specs(spec)] for spec in queues}

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
