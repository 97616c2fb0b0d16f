"""The coordinator's background work takes turns on the event loop.

Closing seconds, sealing node minutes, recomputing snapshots, flushing
rollups and merging a query's window all run on the loop that also serves
RPCs. Each piece yields to the loop after SLICE of work; and only one piece
runs at a time, in a turn of the lane. Side by side, each would take a step
every loop iteration, and an RPC, which needs several iterations to be read,
handled and answered, would wait for all of them every time.

After each slice the loop is left to itself for PAUSE, not just one
iteration: gRPC's poller thread wakes the loop with one byte per completion
on a socket pair, and the loop reads back one byte per iteration. Kept busy,
the loop iterates a few hundred times a second, the pair fills (about 270
one-byte writes), the poller blocks, and every completion, a new RPC's
included, waits in gRPC behind node messages: 100-200 ms at 1,000 nodes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# Work yields to the loop after this much time (yielding per item would make
# the work itself crawl on a busy loop; longer would make RPCs wait), then
# lets it idle this long: background work gets at most two thirds of it.
SLICE = 0.002
PAUSE = 0.001


class Lane:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[object] | None = None
        self._since = 0.0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the lane for one piece of work; within a turn, a nested one is part of it."""
        if self._holder is asyncio.current_task():
            yield
            return
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def pace(self) -> None:
        """Within a turn, between items: once SLICE has passed, leave the loop
        to RPCs for PAUSE, then let any other waiting piece take a step."""
        if self._holder is not asyncio.current_task():
            raise RuntimeError("Lane.pace() outside a turn of the lane")
        if time.perf_counter() - self._since < SLICE:
            return
        self._release()
        try:
            await asyncio.sleep(PAUSE)
        finally:
            # Cancelled while waiting here, this task holds nothing and ``turn`` releases nothing.
            await self._acquire()

    async def _acquire(self) -> None:
        await self._lock.acquire()
        self._holder = asyncio.current_task()
        self._since = time.perf_counter()

    def _release(self) -> None:
        if self._holder is asyncio.current_task():
            self._holder = None
            self._lock.release()
