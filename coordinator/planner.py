"""Which queues each node runs: the assignment planner.

A node gets every queue whose selector matches its labels and, if the queue
declares the tasks it carries, that has them. A draining node gets no queues
and the drain flag, so it stops fetching and finishes what it holds. A
cordoned node gets no new queues: only those of its matching queues it ran
when it was cordoned (``cordoned`` names them; None when not cordoned).

Nodes of one queue may still differ in their tasks (a rolling deploy): each
assignment lists, per queue, the tasks some of its nodes have and others lack
(``served_tasks``), so a node lacking one hands its messages back to the
broker for another node instead of dead-lettering them.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from octobot.selector import Selector
from octobot.v1 import queue_pb2

# Served task names listed in an assignment at most, per queue and in all: a
# rolling deploy adds a few tasks, and one node registering thousands of names
# (up to 10,000 of 255 characters) must not swell every other node's assignment.
MAX_SERVED_TASKS = 1_000
MAX_SERVED_CHARS = 1 << 20


@dataclass(frozen=True, slots=True)
class Placeable:
    """What the planner knows of a node."""

    labels: Mapping[str, str]
    tasks: frozenset[str]
    draining: bool = False
    cordoned: Collection[str] | None = None


def carries(patterns: Sequence[str], tasks: Collection[str]) -> bool:
    """Whether a node with ``tasks`` has a task for each of a queue's patterns:
    a name, or a prefix such as "emails.*"."""
    for pattern in patterns:
        if pattern.endswith("*"):
            prefix = pattern[:-1]
            if not any(task.startswith(prefix) for task in tasks):
                return False
        elif pattern not in tasks:
            return False
    return True


def runs_on(queue: queue_pb2.QueueSpec, node: Placeable) -> bool:
    """Whether the node runs the queue."""
    if node.draining or (node.cordoned is not None and queue.name not in node.cordoned):
        return False
    return _selector(queue.selector).matches(node.labels) and carries(queue.tasks, node.tasks)


@functools.lru_cache(maxsize=4096)
def _selector(text: str) -> Selector:
    return Selector.parse(text)


def served_tasks(queues: Iterable[queue_pb2.QueueSpec], nodes: Iterable[Placeable]) -> dict[str, list[str]]:
    """Per queue, the tasks some of its nodes have and others lack (sorted, at
    most MAX_SERVED_TASKS); queues whose nodes all have the same tasks are left out."""
    queues = list(queues)
    union: dict[str, set[str]] = {}
    common: dict[str, set[str]] = {}
    for node in nodes:
        tasks = set(node.tasks)
        for q in queues:
            if runs_on(q, node):
                union.setdefault(q.name, set()).update(tasks)
                common[q.name] = common[q.name] & tasks if q.name in common else set(tasks)
    return {name: sorted(tasks - common[name])[:MAX_SERVED_TASKS] for name, tasks in union.items()
            if tasks != common[name]}


def plan(node: Placeable, queues: Iterable[queue_pb2.QueueSpec], generation: int,
         served: Mapping[str, Sequence[str]]) -> queue_pb2.Assignment:
    """The full assignment for one node."""
    chosen = []
    budget = MAX_SERVED_CHARS
    for q in queues:
        if runs_on(q, node):
            names = [t for t in served.get(q.name, ()) if t not in node.tasks]  # only what this node lacks
            if names and budget > 0:
                spec = queue_pb2.QueueSpec()
                spec.CopyFrom(q)
                for name in names:
                    budget -= len(name)
                    if budget < 0:
                        break
                    spec.served_tasks.append(name)
                q = spec
            chosen.append(q)
    return queue_pb2.Assignment(generation=generation, queues=chosen, drain=node.draining)


def same_work(a: queue_pb2.Assignment, b: queue_pb2.Assignment | None) -> bool:
    """True when two assignments ask for the same work, whatever their generations."""
    if b is None:
        return False
    return a.drain == b.drain and list(a.queues) == list(b.queues)
