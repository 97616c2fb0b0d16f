"""Time series of closed, compact stats buckets, in memory.

A ``Series`` (a queue, or a queue on the nodes sharing a label value) keeps
1 s buckets for 15 minutes, plus 10 s and 1 min blocks built from them as
they close, so a 15 minute window merges about 30 buckets instead of 900.
A ``NodeSeries`` (a queue on one node; there may be 20,000 of them) keeps
each second's sample as received for 100 s and merged minutes for 15
minutes: 1 s buckets of every node for 15 minutes would not fit in memory.

A late sample (a node's buffer sent after an outage) is appended to every
closed bucket and block that holds its second.
"""

from __future__ import annotations

from typing import Any

from octobot.coordinator.stats.bucket import Bucket, merged_bytes, merged_compact

RETENTION = 15 * 60
# Block widths of a Series, coarsest first.
BLOCKS = (60, 10)
NODE_SECONDS = 100
# Nodes are visited (sealed, pruned) every SEAL_SPREAD seconds, a slice of them
# each second, and a node seals a minute at its first visit SEAL_SPREAD x (0, 1
# or 2) seconds after the minute ends: the merging spreads over the whole
# minute instead of piling up in its first 20 s (which starved queries there).
SEAL_SPREAD = 20


def _prune(slots: dict[int, Any], oldest: int) -> None:
    """Drop keys below ``oldest`` from the front (keys arrive mostly in order)."""
    while slots:
        first = next(iter(slots))
        if first >= oldest:
            return
        del slots[first]


def _append(slots: dict[int, bytes], key: int, raw: bytes) -> None:
    slots[key] = slots.get(key, b"") + raw


class Series:
    __slots__ = ("seconds", "blocks", "finished")

    def __init__(self) -> None:
        self.seconds: dict[int, bytes] = {}
        self.blocks: dict[int, dict[int, bytes]] = {width: {} for width in BLOCKS}
        # Tasks finished per second, apart: sparklines need no histograms.
        self.finished: dict[int, int] = {}

    def put(self, second: int, bucket: Bucket) -> None:
        """The bucket of a second that just closed."""
        self.seconds[second] = bucket.compact()
        self.finished[second] = bucket.finished

    def add_late(self, second: int, raw: bytes, finished: int, closed_until: int) -> None:
        _append(self.seconds, second, raw)
        self.finished[second] = self.finished.get(second, 0) + finished
        for width, blocks in self.blocks.items():
            start = second - second % width
            if start + width <= closed_until:
                _append(blocks, start, raw)

    def close(self, start: int, end: int) -> None:
        """Seconds [start, end) have closed: build the blocks they complete."""
        finer, step = self.seconds, 1
        for width in reversed(BLOCKS):
            blocks = self.blocks[width]
            for block in range(start - start % width, end - width + 1, width):
                parts = [v for t in range(block, block + width, step) if (v := finer.get(t)) is not None]
                if parts:
                    blocks[block] = merged_compact(parts).compact()
            finer, step = blocks, width

    def collect(self, start: int, end: int, out: list[bytes]) -> None:
        """The compact buckets that make up [start, end), as few as the blocks allow."""
        t = start
        while t < end:
            for width in BLOCKS:
                if t % width == 0 and t + width <= end:
                    if (v := self.blocks[width].get(t)) is not None:
                        out.append(v)
                    t += width
                    break
            else:
                if (v := self.seconds.get(t)) is not None:
                    out.append(v)
                t += 1

    def finished_between(self, start: int, end: int) -> list[int]:
        return [self.finished.get(t, 0) for t in range(start, end)]

    def prune(self, oldest: int) -> bool:
        """Forget time before ``oldest``; True when nothing is left."""
        _prune(self.seconds, oldest)
        _prune(self.finished, oldest)
        for width, blocks in self.blocks.items():
            _prune(blocks, oldest - width + 1)
        return not self.seconds and not any(self.blocks.values())


def due(slot: int, start: int, end: int) -> bool:
    """Whether the turn of a NodeSeries in ``slot`` to be sealed comes as seconds [start, end) close."""
    return (end - slot) // SEAL_SPREAD > (start - slot) // SEAL_SPREAD


class NodeSeries:
    __slots__ = ("seconds", "minutes", "sealed_until", "slot", "lag")

    def __init__(self, sealed_until: int, index: int) -> None:
        """``index``: its position among the node series, which spreads their upkeep."""
        self.seconds: dict[int, bytes] = {}
        self.minutes: dict[int, bytes] = {}
        # Minutes before this second are merged into ``minutes``.
        self.sealed_until = sealed_until
        # Visited when the closed seconds pass a multiple of SEAL_SPREAD plus this.
        self.slot = index % SEAL_SPREAD
        # How long after a minute ends it is sealed (never past its seconds' pruning:
        # a visit seals before it prunes, and prunes only what is NODE_SECONDS old).
        self.lag = index // SEAL_SPREAD % 3 * SEAL_SPREAD

    def add(self, second: int, raw: bytes, newest: int) -> None:
        """A sample as received (serialized); ``newest`` is the current second."""
        if second >= newest - NODE_SECONDS:
            _append(self.seconds, second, raw)
        if second < self.sealed_until:  # late: its minute is merged already
            _append(self.minutes, second - second % 60, raw)

    def seal(self, now: int) -> None:
        """Merge the minutes that ended ``lag`` seconds before ``now`` from their seconds."""
        until = now - self.lag
        for minute in range(self.sealed_until, until - until % 60, 60):
            raw = [v for t in range(minute, minute + 60) if (v := self.seconds.get(t)) is not None]
            if raw:
                self.minutes[minute] = merged_bytes(raw)
        self.sealed_until = max(self.sealed_until, until - until % 60)

    def collect(self, start: int, end: int, out: list[bytes]) -> None:
        """The compact buckets that make up [start, end). Before the last 100 s only
        whole minutes are known, so a ``start`` there moves back to its minute."""
        if start < end - NODE_SECONDS + 5:
            start -= start % 60
        t = start
        sealed = min(end, self.sealed_until)
        while t < end:
            if t % 60 == 0 and t + 60 <= sealed:
                v = self.minutes.get(t)
                t += 60
            else:
                v = self.seconds.get(t)
                t += 1
            if v is not None:
                out.append(v)

    def prune(self, newest: int) -> bool:
        _prune(self.seconds, newest - NODE_SECONDS)
        _prune(self.minutes, newest - RETENTION - 59)
        return not self.seconds and not self.minutes
