"""The coordinator's domain types, free of storage and transport: what the
store returns (a node's record, a minute of stats) and the errors the
services turn into gRPC statuses (coordinator/errors.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from octobot.coordinator.planner import Placeable


class NotFound(LookupError):
    pass


class AlreadyExists(Exception):
    pass


class FailedPrecondition(Exception):
    """The request is valid but the system is not in a state to do it (e.g. forget a node that is up)."""


class TooMany(Exception):
    """A bound on stored things is reached (e.g. tokens)."""


@dataclass(slots=True)
class NodeRecord:
    node_id: str
    hostname: str
    labels: dict[str, str]
    version: str
    tasks: list[str] = field(default_factory=list)
    registered_at: float = 0.0
    last_seen: float = 0.0
    draining: bool = False
    # None when not cordoned; else the queues the node may keep running.
    cordoned_queues: list[str] | None = None

    def placeable(self) -> Placeable:
        return Placeable(self.labels, frozenset(self.tasks), self.draining, self.cordoned_queues)


@dataclass(slots=True)
class StatsMinute:
    """One minute of a stats series (see StatsMinuteRow); histograms are serialized protos."""

    queue: str
    dim: str
    value: str
    minute: int
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    rejected: int = 0
    backlog: int = -1
    run_time: bytes = b""
    wait_time: bytes = b""
    end_to_end: bytes = b""
