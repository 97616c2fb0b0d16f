"""Capped exponential backoff with jitter, shared by every reconnect loop."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial: float = 0.2, cap: float = 5.0) -> None:
        self.initial = initial
        self.cap = cap
        self._next = initial

    def next(self) -> float:
        """The delay before the next attempt: doubles up to the cap, with jitter
        so that many nodes do not retry in step."""
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._next = self.initial
