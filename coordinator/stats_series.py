"""Time series of stats buckets, in memory.

A ``Series`` (a queue, or a queue on the nodes sharing a label value) keeps
1 s buckets for 15 minutes, plus 10 s and 1 min blocks built from them as
they close, so a 15 minute window merges about 30 buckets instead of 900.
A ``NodeSeries`` (a queue on one node; there may be 20,000 of them) keeps
each second's sample as received for 90 s and merged minutes for 15 minutes:
1 s buckets of every node for 15 minutes would not fit in memory.

Seconds below ``closed_until`` are closed: their buckets are compacted and
the blocks made of them are built, so a late sample (a node's buffer sent
after an outage) is added to every bucket and block that contains it.
"""

from __future__ import annotations

from typing import Any

from octobot.coordinator.stats_bucket import Bucket, add_into
from octobot.v1 import stats_pb2

RETENTION = 15 * 60
# Block widths of a Series, coarsest first.
BLOCKS = (60, 10)
NODE_SECONDS = 90

Slots = dict[int, Bucket | bytes]


def _prune(slots: dict[int, Any], oldest: int) -> None:
    """Drop keys below ``oldest`` from the front (keys arrive mostly in order)."""
    while slots:
        first = next(iter(slots))
        if first >= oldest:
            return
        del slots[first]


class Series:
    __slots__ = ("seconds", "blocks", "finished")

    def __init__(self) -> None:
        self.seconds: Slots = {}
        self.blocks: dict[int, Slots] = {width: {} for width in BLOCKS}
        # Tasks finished per second, apart: sparklines need no histograms.
        self.finished: dict[int, int] = {}

    def add(self, second: int, sample: stats_pb2.QueueSample, closed_until: int) -> None:
        add_into(self.seconds, second, sample, closed=second < closed_until)
        self.finished[second] = self.finished.get(second, 0) + sample.succeeded + sample.failed
        if second < closed_until:
            for width, blocks in self.blocks.items():
                start = second - second % width
                if start + width <= closed_until:
                    add_into(blocks, start, sample, closed=True)

    def close(self, start: int, end: int) -> list[Bucket]:
        """Seconds [start, end) have closed: build the blocks they complete and
        compact them. Returns the buckets of those seconds, before compaction."""
        fresh = {s: b for s in range(start, end) if isinstance(b := self.seconds.get(s), Bucket)}
        finer, step = self.seconds, 1
        for width in reversed(BLOCKS):
            blocks = self.blocks[width]
            for block in range(start - start % width, end - width + 1, width):
                merged, found = Bucket(), False
                for t in range(block, block + width, step):
                    if (v := finer.get(t)) is not None:
                        merged.add(v)
                        found = True
                if found:
                    blocks[block] = merged.compact()
            finer, step = blocks, width
        for s, b in fresh.items():
            self.seconds[s] = b.compact()
        return list(fresh.values())

    def collect(self, start: int, end: int, closed_until: int, into: Bucket) -> None:
        """Merge [start, end) into ``into`` with as few buckets as the blocks allow."""
        t = start
        limit = min(end, closed_until)
        while t < end:
            for width in BLOCKS:
                if t % width == 0 and t + width <= limit:
                    if (v := self.blocks[width].get(t)) is not None:
                        into.add(v)
                    t += width
                    break
            else:
                if (v := self.seconds.get(t)) is not None:
                    into.add(v)
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


class NodeSeries:
    __slots__ = ("seconds", "minutes")

    def __init__(self) -> None:
        self.seconds: Slots = {}
        self.minutes: Slots = {}

    def add(self, second: int, sample: stats_pb2.QueueSample, closed_until: int) -> None:
        if second in self.seconds:
            add_into(self.seconds, second, sample, closed=True)
        else:
            self.seconds[second] = sample.SerializeToString()
        minute = second - second % 60
        add_into(self.minutes, minute, sample, closed=minute + 60 <= closed_until)

    def close(self, start: int, end: int) -> None:
        """Compact the minutes that ended in [start, end)."""
        for minute in range(end - end % 60 - 60, start - 60, -60):
            if minute + 60 <= start:
                break
            if isinstance(b := self.minutes.get(minute), Bucket):
                self.minutes[minute] = b.compact()

    def collect(self, start: int, end: int, closed_until: int, into: Bucket) -> None:
        """Merge [start, end) into ``into``. Before the last 90 s only whole
        minutes are known, so a ``start`` there moves back to its minute."""
        if start < end - NODE_SECONDS + 5:
            start -= start % 60
        t = start
        while t < end:
            if t % 60 == 0 and t + 60 <= end:
                v = self.minutes.get(t)
                t += 60
            else:
                v = self.seconds.get(t)
                t += 1
            if v is not None:
                into.add(v)

    def prune(self, newest: int) -> bool:
        _prune(self.seconds, newest - NODE_SECONDS)
        _prune(self.minutes, newest - RETENTION - 59)
        return not self.seconds and not self.minutes
