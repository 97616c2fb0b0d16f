"""Which queues each node runs: the assignment planner.

A node gets every queue whose selector matches its labels. A draining node gets
no queues and the drain flag, so it stops fetching and finishes what it holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from octobot.selector import Selector
from octobot.v1 import queue_pb2


def runs_on(queue: queue_pb2.QueueSpec, labels: Mapping[str, str], draining: bool) -> bool:
    """Whether a node with these labels runs the queue."""
    return not draining and Selector.parse(queue.selector).matches(labels)


def plan(labels: Mapping[str, str], draining: bool, queues: Iterable[queue_pb2.QueueSpec],
         generation: int) -> queue_pb2.Assignment:
    """The full assignment for one node."""
    chosen = [q for q in queues if runs_on(q, labels, draining)]
    return queue_pb2.Assignment(generation=generation, queues=chosen, drain=draining)


def same_work(a: queue_pb2.Assignment, b: queue_pb2.Assignment | None) -> bool:
    """True when two assignments ask for the same work, whatever their generations."""
    if b is None:
        return False
    return a.drain == b.drain and list(a.queues) == list(b.queues)
