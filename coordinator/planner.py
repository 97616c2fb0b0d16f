"""Which queues each node runs: the assignment planner.

A node gets every queue whose selector matches its labels. A draining node gets
no queues and the drain flag, so it stops fetching and finishes what it holds.
A cordoned node gets no new queues: only those of its matching queues it ran
when it was cordoned (``cordoned`` names them; None when not cordoned).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from octobot.selector import Selector
from octobot.v1 import queue_pb2


def runs_on(queue: queue_pb2.QueueSpec, labels: Mapping[str, str], draining: bool,
            cordoned: Collection[str] | None = None) -> bool:
    """Whether a node with these labels, drain flag and cordon runs the queue."""
    if draining or (cordoned is not None and queue.name not in cordoned):
        return False
    return Selector.parse(queue.selector).matches(labels)


def plan(labels: Mapping[str, str], draining: bool, queues: Iterable[queue_pb2.QueueSpec],
         generation: int, cordoned: Collection[str] | None = None) -> queue_pb2.Assignment:
    """The full assignment for one node."""
    chosen = [q for q in queues if runs_on(q, labels, draining, cordoned)]
    return queue_pb2.Assignment(generation=generation, queues=chosen, drain=draining)


def same_work(a: queue_pb2.Assignment, b: queue_pb2.Assignment | None) -> bool:
    """True when two assignments ask for the same work, whatever their generations."""
    if b is None:
        return False
    return a.drain == b.drain and list(a.queues) == list(b.queues)
