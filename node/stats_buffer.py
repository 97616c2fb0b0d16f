"""Stats reports taken every interval whether or not the coordinator is
reachable, kept (bounded) until the session sends them, so a short outage
leaves no hole in the coordinator's time series."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from octobot.v1 import node_pb2

log = logging.getLogger("octobot.node.stats")

# 15 minutes of 1 s reports; older ones are dropped first.
CAPACITY = 900


class StatsBuffer:
    def __init__(self, take: Callable[[], node_pb2.StatsReport], interval: float, capacity: int = CAPACITY) -> None:
        self._take = take
        self.interval = interval
        self._reports: deque[node_pb2.StatsReport] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.dropped = 0

    def run(self, stop: threading.Event) -> None:
        """Take a report every interval until ``stop`` is set."""
        while not stop.wait(self.interval):
            report = self._take()
            with self._lock:
                if len(self._reports) == self._reports.maxlen:
                    self.dropped += 1
                    if self.dropped == 1:
                        log.warning("stats buffer full: dropping the oldest reports until the coordinator is back")
                self._reports.append(report)

    def drain(self) -> list[node_pb2.StatsReport]:
        """Every report not yet sent, oldest first."""
        with self._lock:
            reports = list(self._reports)
            self._reports.clear()
            self.dropped = 0
        return reports
