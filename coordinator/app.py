"""The coordinator's shared state and the single path every desired-state
change takes: write to the store, then push to the affected nodes."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from octobot.coordinator.auth import Auth
from octobot.coordinator.backlog import Backlogs
from octobot.coordinator.limits import NodeLimits
from octobot.coordinator.stats.report_intake import ReportIntake
from octobot.coordinator.sessions import Liveness, NodeSession, Sessions
from octobot.coordinator.stats.cluster import GRACE, ClusterStats
from octobot.coordinator.store import Store, StoreDown, outage

log = logging.getLogger("octobot.coordinator")
T = TypeVar("T")


# Seconds between writes of the stats rollups: what a crash can lose.
STATS_FLUSH_EVERY = 5.0
# Rounds of persist_last_seen it takes to write every connected node once.
SEEN_ROUNDS = 12
# Pushes a node's arrival asks for (its tasks may change what other nodes
# hand back) run at most this often: a thousand nodes reconnecting at once
# cost a few pushes, not a thousand.
PUSH_EVERY = 1.0
DEFAULT_STATS_RETENTION = 7 * 86400


class Coordinator:
    def __init__(self, store: Store, liveness: Liveness, retention: int = DEFAULT_STATS_RETENTION,
                 anonymous: bool = True) -> None:
        self.store = store
        # Who may call what; ``anonymous``: callers without credentials act as admin.
        self.auth = Auth(anonymous, reload=lambda: self.db(self.store.list_tokens))
        self.sessions = Sessions(liveness)
        self.stats = ClusterStats()
        # Nodes' report rates, and what was refused from them.
        self.limits = NodeLimits()
        self.reports = ReportIntake(self.limits, self.stats)
        # Queue depths the coordinator measures itself.
        self.backlogs = Backlogs()
        # How long the store keeps 1 minute stats rollups, in seconds.
        self.retention = retention
        # One thread serialises store access: SQLite wants one writer, and the
        # event loop must never block on the database.
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._push_lock = asyncio.Lock()
        self._push_wanted = asyncio.Event()
        # Nodes that disconnected since the last write of last-seen times.
        self._departed: dict[str, float] = {}
        # Whether the last store call failed for an outage (said once, and its end once).
        self.store_down = False

    async def db(self, fn: Callable[..., T], *args: object) -> T:
        """Run a store call on the store's thread. An outage (the database gone,
        or full) is raised as StoreDown and said once in the log, and its end
        once: at the next call that reached the store."""
        transactions = self.store.transactions
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._db_thread, fn, *args)
        except Exception as exc:
            down = outage(exc)
            if down is None:
                raise
            if not self.store_down:
                log.warning("%s; calls that need it answer UNAVAILABLE until it is back", down)
            self.store_down = True
            raise down from None
        if self.store_down and self.store.transactions != transactions:
            self.store_down = False
            log.info("the store is back")
        return result

    async def push(self) -> None:
        """Recompute every connected node's assignment and send those that changed."""
        async with self._push_lock:
            queues, generation = await self.db(self.store.snapshot)
            nodes = await self.db(self.store.list_nodes)
            self.sessions.push(queues, generation, nodes)

    def request_push(self) -> None:
        """A push soon (see PUSH_EVERY), for a change that is not the desired state's."""
        self._push_wanted.set()

    async def pushes(self) -> None:
        while True:
            await self._push_wanted.wait()
            self._push_wanted.clear()
            try:
                await self.push()
            except StoreDown:
                self._push_wanted.set()  # said once, by db(); tried again
            except Exception:
                log.exception("pushing assignments")
            await asyncio.sleep(PUSH_EVERY)

    async def persist_last_seen(self, every: float) -> None:
        """Write connected nodes' last-seen times to the store: each round a
        SEEN_ROUNDS-th of them, so that a store write never holds the GIL long
        (1,000 nodes in one write stalled RPCs for up to 300 ms); a connected
        node's stored time is at most ``every`` x SEEN_ROUNDS seconds old; the
        nodes that left since the last round (``left``) are written with it."""
        for round_ in itertools.count():
            await asyncio.sleep(every)
            seen, self._departed = self._departed, {}
            seen.update((s.record.node_id, s.last_seen_wall) for s in self.sessions.all()
                        if zlib.crc32(s.record.node_id.encode()) % SEEN_ROUNDS == round_ % SEEN_ROUNDS)
            try:
                await self.db(self.store.touch_nodes, seen)
            except StoreDown:
                pass  # said once, by db()
            except Exception as exc:
                log.warning("could not persist node last-seen times: %s", exc)

    def left(self, session: NodeSession) -> None:
        """A node disconnected: its last-seen time goes to the store with the next round."""
        self._departed[session.record.node_id] = session.last_seen_wall

    async def flush_stats(self, final: bool = False) -> None:
        """Write the stats rollups the store lacks; on the way out, the open seconds too."""
        if final:
            await self.reports.drain()
            await self.stats.tick(time.time() + GRACE + 1)
        deltas, until = await self.stats.take_deltas()
        try:
            await self.db(self.store.merge_stats_minutes, deltas)
        except Exception as exc:  # kept for the next flush
            if not isinstance(exc, StoreDown):  # an outage was said once, by db()
                log.warning("could not write %d stats rollups: %s", len(deltas), exc)
            self.stats.requeue(deltas)
        else:
            self.stats.committed(until)

    async def keep_stats(self, every: float = STATS_FLUSH_EVERY) -> None:
        """Flush rollups every few seconds and forget those past retention every minute."""
        pruned_at = 0.0
        while True:
            await asyncio.sleep(every)
            await self.flush_stats()
            if time.monotonic() - pruned_at >= 60:
                pruned_at = time.monotonic()
                before = (int(time.time()) - self.retention) // 60
                try:
                    await self.db(self.store.prune_stats_minutes, before)
                except StoreDown:
                    pass  # said once, by db(); pruned next time
                except Exception as exc:
                    log.warning("could not prune stats rollups: %s", exc)

    def close(self) -> None:
        self._db_thread.shutdown(wait=True)
        self.store.close()
