"""Whether each queue is being served: by how many nodes that are up, and
whether any of them cannot reach the queue's broker."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from octobot.coordinator.planner import Placeable, runs_on
from octobot.v1 import admin_pb2, node_pb2, queue_pb2

# A node that is up, as placed, with its last heartbeat's status per queue.
UpNode = tuple[Placeable, Mapping[str, node_pb2.QueueStatus]]


def health(specs: Sequence[queue_pb2.QueueSpec], nodes: Iterable[UpNode]) -> list[admin_pb2.QueueHealth]:
    """Each queue's health, in the order of ``specs``."""
    out = [admin_pb2.QueueHealth(queue=spec.name) for spec in specs]
    for node, statuses in nodes:
        for spec, h in zip(specs, out):
            if runs_on(spec, node):
                h.nodes += 1
                status = statuses.get(spec.name)
                if status is not None and status.error:
                    h.broker_errors += 1
                    h.error = h.error or status.error
    for spec, h in zip(specs, out):
        h.state = (admin_pb2.QUEUE_STATE_PAUSED if spec.paused else
                   admin_pb2.QUEUE_STATE_UNSERVED if not h.nodes else
                   admin_pb2.QUEUE_STATE_BROKER_ERROR if h.broker_errors else
                   admin_pb2.QUEUE_STATE_SERVING)
    return out
