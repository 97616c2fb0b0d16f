"""Which queues each node runs: the assignment planner.

A node gets every queue whose selector matches its labels and, if the queue
declares the tasks it carries, that has them. A draining node gets no queues
and the drain flag, so it stops fetching and finishes what it holds. A
cordoned node gets no new queues: only those of its matching queues it ran
when it was cordoned (``cordoned`` names them; None when not cordoned).

Nodes of one queue may still differ in their tasks (a rolling deploy): each
assignment lists, per queue, the tasks other nodes of the queue have and this
one lacks (``served_tasks``), so a node lacking one hands its messages back to
the broker for another node instead of dead-lettering them. The list is
bounded, and each kind of node (a distinct task set) gets an equal share of
it: one node registering thousands of names cannot crowd out the task an
honest new version added.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from octobot.selector import Selector
from octobot.v1 import queue_pb2

# Served task names listed in an assignment at most, per queue, and their
# encoded bytes in all: a rolling deploy adds a few tasks, and one node
# registering thousands of names must not swell every other node's assignment.
MAX_SERVED_TASKS = 1_000
MAX_SERVED_BYTES = 1 << 20
# What a name costs in a QueueSpec beyond its UTF-8 bytes (tag and length).
_NAME_OVERHEAD = 4


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


def served_tasks(queues: Iterable[queue_pb2.QueueSpec],
                 nodes: Iterable[Placeable]) -> dict[str, tuple[frozenset[str], ...]]:
    """Per queue, the distinct task sets of the nodes it is placed on, when
    they differ (queues whose nodes all have the same tasks are left out)."""
    queues = list(queues)
    kinds: dict[str, set[frozenset[str]]] = {}
    for node in nodes:
        for q in queues:
            if runs_on(q, node):
                kinds.setdefault(q.name, set()).add(node.tasks)
    return {name: tuple(sorted(sets, key=sorted)) for name, sets in kinds.items() if len(sets) > 1}


@functools.lru_cache(maxsize=1024)  # nodes of one kind, in one push, ask the same
def lacking(node_tasks: frozenset[str], kinds: tuple[frozenset[str], ...]) -> list[str]:
    """The tasks the other kinds of node have and this one lacks: an equal
    share of MAX_SERVED_TASKS from each kind, taken in turns (the first name of
    each kind, then the second...), so that a cut keeps every kind's first ones."""
    others = [sorted(kind - node_tasks) for kind in kinds if kind != node_tasks]
    others = [names for names in others if names]
    share = max(1, MAX_SERVED_TASKS // max(1, len(others)))
    turns = itertools.zip_longest(*(names[:share] for names in others))
    return list(dict.fromkeys(name for turn in turns for name in turn if name is not None))


def plan(node: Placeable, queues: Iterable[queue_pb2.QueueSpec], generation: int,
         served: Mapping[str, tuple[frozenset[str], ...]]) -> queue_pb2.Assignment:
    """The full assignment for one node."""
    mine = [q for q in queues if runs_on(q, node)]
    names = {q.name: lacking(node.tasks, served[q.name]) for q in mine if q.name in served}
    # Each queue with names to list gets an equal share of the bytes.
    budget = MAX_SERVED_BYTES // max(1, sum(1 for n in names.values() if n))
    chosen = []
    for q in mine:
        if names.get(q.name):
            spec = queue_pb2.QueueSpec()
            spec.CopyFrom(q)
            left = budget
            for name in names[q.name]:
                left -= len(name.encode()) + _NAME_OVERHEAD
                if left < 0:
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
