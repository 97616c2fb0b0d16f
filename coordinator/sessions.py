"""Live node sessions: who is connected, their heartbeats, and pushing
assignments to them.

Liveness is kept in memory (heartbeats are frequent); the store only gets a
node's record on Hello and its last-seen time every few seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from octobot.coordinator.planner import Placeable, plan, same_work, served_tasks
from octobot.coordinator.queue_health import health
from octobot.coordinator.records import NodeRecord
from octobot.v1 import admin_pb2, node_pb2, queue_pb2


@dataclass(slots=True)
class Liveness:
    """Heartbeat ages after which a node is suspect, then down."""

    suspect_after: float = 5.0
    down_after: float = 15.0

    def state(self, age: float | None) -> admin_pb2.NodeState:
        if age is None or age >= self.down_after:
            return admin_pb2.NODE_STATE_DOWN
        if age >= self.suspect_after:
            return admin_pb2.NODE_STATE_SUSPECT
        return admin_pb2.NODE_STATE_UP


@dataclass(eq=False)
class NodeSession:
    """One connected node's stream."""

    record: NodeRecord
    # Messages for the node; None ends the stream (the node reconnects).
    outbox: asyncio.Queue[node_pb2.ConnectResponse | None] = field(default_factory=asyncio.Queue)
    last_heartbeat: float = field(default_factory=time.monotonic)
    last_seen_wall: float = field(default_factory=time.time)
    heartbeat: node_pb2.Heartbeat = field(default_factory=node_pb2.Heartbeat)
    applied_generation: int = 0
    sent: queue_pb2.Assignment | None = None

    def assignment(self, queues: list[queue_pb2.QueueSpec], generation: int,
                   served: dict[str, tuple[frozenset[str], ...]]) -> queue_pb2.Assignment:
        """What the planner gives this node now."""
        return plan(self.record.placeable(), queues, generation, served)

    def send_if_changed(self, assignment: queue_pb2.Assignment) -> None:
        if not same_work(assignment, self.sent):
            self.sent = assignment
            self.outbox.put_nowait(node_pb2.ConnectResponse(assignment=assignment))


class Sessions:
    """All connected nodes, by node id."""

    def __init__(self, liveness: Liveness) -> None:
        self.liveness = liveness
        self._by_id: dict[str, NodeSession] = {}
        # Of the last push: what each registered node was placed as, and the
        # task sets of each queue's nodes where they differ.
        self._placed: dict[str, Placeable] = {}
        self.served: dict[str, tuple[frozenset[str], ...]] = {}
        # Label keys of every node registered (since the start, or before it, as of a push): what stats may group by.
        self.label_keys: set[str] = set()

    def attach(self, session: NodeSession) -> None:
        # A reconnecting node may arrive before its old stream is noticed dead.
        self._by_id[session.record.node_id] = session
        self.label_keys.update(session.record.labels)

    def detach(self, session: NodeSession) -> None:
        if self._by_id.get(session.record.node_id) is session:
            del self._by_id[session.record.node_id]

    def get(self, node_id: str) -> NodeSession | None:
        return self._by_id.get(node_id)

    def all(self) -> list[NodeSession]:
        return list(self._by_id.values())

    def push(self, queues: list[queue_pb2.QueueSpec], generation: int, nodes: list[NodeRecord]) -> None:
        """Send every session whose work changed its new full assignment;
        ``nodes``: every registered node, whose tasks make ``served``."""
        self._placed = {node.node_id: node.placeable() for node in nodes}
        self.label_keys.update(key for node in nodes for key in node.labels)
        self.served = served_tasks(queues, self._placed.values())
        for session in self._by_id.values():
            session.send_if_changed(session.assignment(queues, generation, self.served))

    def placed_as(self, record: NodeRecord) -> bool:
        """Whether the last push knew the node as it is now (labels, tasks,
        drain, cordon): if not, the other nodes' served tasks may change."""
        return self._placed.get(record.node_id) == record.placeable()

    def forget(self, node_id: str) -> None:
        """Drop a forgotten node's session and end its stream: if it was only
        frozen and comes back, it reconnects and registers anew."""
        session = self._by_id.pop(node_id, None)
        if session is not None:
            session.outbox.put_nowait(None)

    def health(self, specs: list[queue_pb2.QueueSpec]) -> list[admin_pb2.QueueHealth]:
        """How the queues are served by the nodes that are up now."""
        up = [(s.record.placeable(), {q.queue: q for q in s.heartbeat.queues}) for s in self._by_id.values()
              if self.state(s.record.node_id) == admin_pb2.NODE_STATE_UP]
        return health(specs, up)

    def state(self, node_id: str) -> admin_pb2.NodeState:
        session = self._by_id.get(node_id)
        return self.liveness.state(None if session is None else time.monotonic() - session.last_heartbeat)

    def node_info(self, record: NodeRecord) -> admin_pb2.NodeInfo:
        """What admin clients see of a node: its record merged with its live session."""
        session = self._by_id.get(record.node_id)
        info = admin_pb2.NodeInfo(
            node_id=record.node_id, hostname=record.hostname, labels=record.labels, version=record.version,
            tasks=record.tasks, state=self.state(record.node_id), draining=record.draining,
            cordoned=record.cordoned_queues is not None, cordoned_queues=record.cordoned_queues or [])
        info.registered_at.FromNanoseconds(int(record.registered_at * 1e9))
        last_seen = record.last_seen
        if session is not None:
            last_seen = session.last_seen_wall
            info.applied_generation = session.applied_generation
            info.assigned_generation = session.sent.generation if session.sent else 0
            info.drained = session.heartbeat.drained
            info.queues.extend(session.heartbeat.queues)
        info.last_seen.FromNanoseconds(int(last_seen * 1e9))
        return info
