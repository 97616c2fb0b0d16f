"""Whether each queue is being served: by how many nodes that are up, and
whether any of them cannot reach the queue's broker."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from octobot.coordinator.planner import Placeable, runs_on
from octobot.v1 import admin_pb2, node_pb2, queue_pb2

# A node that is up, as placed, with its last heartbeat's status per queue.
UpNode = tuple[Placeable, Mapping[str, node_pb2.QueueStatus]]


def health(specs: Sequence[queue_pb2.QueueSpec], nodes: Iterable[UpNode]) -> list[admin_pb2.QueueHealth]:
    """Each queue's health, in the order of ``specs``.

    Nodes placed alike (the same labels, tasks, drain and cordon: most of a
    fleet) are placed once, so the cost grows with the kinds of node, not
    their number; only nodes reporting a broker error are looked at alone."""
    out = [admin_pb2.QueueHealth(queue=spec.name) for spec in specs]
    kinds: dict[tuple[object, ...], tuple[Placeable, int]] = {}
    failing = []
    for node, statuses in nodes:
        key = (tuple(sorted(node.labels.items())), node.tasks, node.draining,
               None if node.cordoned is None else tuple(sorted(node.cordoned)))
        kinds[key] = (node, kinds[key][1] + 1 if key in kinds else 1)
        if any(status.error for status in statuses.values()):
            failing.append((node, statuses))
    for node, count in kinds.values():
        for spec, h in zip(specs, out):
            if runs_on(spec, node):
                h.nodes += count
    for node, statuses in failing:
        for spec, h in zip(specs, out):
            status = statuses.get(spec.name)
            if status is not None and status.error and runs_on(spec, node):
                h.broker_errors += 1
                h.error = h.error or status.error
    for spec, h in zip(specs, out):
        h.state = (admin_pb2.QUEUE_STATE_PAUSED if spec.paused else
                   admin_pb2.QUEUE_STATE_UNSERVED if not h.nodes else
                   admin_pb2.QUEUE_STATE_BROKER_ERROR if h.broker_errors else
                   admin_pb2.QUEUE_STATE_SERVING)
    return out
