"""Bounds on what callers send, so that even an authenticated node cannot
poison the cluster: a Hello must fit the store's columns
(coordinator/models.py), a stats report must stay within the bounds here
(stats/report_checks.py checks them) before it is merged with every other node's
samples, and each node's reports are rate limited.

The validators are pure and raise ValueError with a one-line message;
``NodeLimits`` keeps what it needs per node (its rate, the queue names it
reported lately) and counts what it refuses, by a reason from ``REASONS``.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field

from octobot.coordinator.stats.series import RETENTION
from octobot.histogram import Histogram
from octobot.node.metrics import MAX_MISSING_TASKS
from octobot.node.stats_buffer import CAPACITY
from octobot.queue_specs import NAME
from octobot.v1 import node_pb2

# -- Hello: it becomes a row of the nodes table -----------------------------------

MAX_NODE_ID = 128
# Ids nodes make are a hostname, '-' and 8 hex digits; certificates' common names fit too.
NODE_ID = re.compile(rf"[A-Za-z0-9_.:@\-]{{1,{MAX_NODE_ID}}}")
MAX_HOSTNAME = 255
MAX_VERSION = 64
MAX_LABELS = 64
# Label keys name stats dimensions (stats_minutes.dim is VARCHAR(64), and
# StatsService's `by` takes 63 characters); values fill stats_minutes.value
# (VARCHAR(255)). The characters are those `octobot-node --label` takes.
LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}")
LABEL_VALUE = re.compile(r"[A-Za-z0-9_.\-]{0,255}")
MAX_TASKS = 10_000
MAX_TASK_NAME = 255
# The task names of one Hello, in UTF-8 bytes: a GetNode answer stays far below gRPC's 4 MiB.
MAX_TASK_BYTES = 256 << 10
# tokens.name is VARCHAR(200): node credentials are "node:" and the node id.
MAX_TOKEN_NAME = 200
# Items in one admin call (messages to enqueue, dead letter ids, queues to apply).
MAX_PER_CALL = 10_000
MAX_ID = 255

# -- Stats reports ----------------------------------------------------------------

MAX_SAMPLES = 1_000
# Tasks of one outcome on one node in one interval: far above what a node
# runs, and sums of many stay far below 2^63 (int64 in numpy and the store).
MAX_COUNT = 10**9
# Tasks held or slots busy on one node for one queue.
MAX_GAUGE = 1_000_000
# Messages in a broker; above 2^53 a double (JSON) cannot hold it exactly.
MAX_BACKLOG = 2**53
# Real histograms clamp values to [1 ns, MAX_VALUE], so their indexes stay in
# this range and they have at most one bucket per index.
MIN_INDEX, MAX_INDEX = Histogram().index_range()
MAX_BUCKETS = MAX_INDEX - MIN_INDEX + 1
# Buckets of all histograms in one report: what it costs to read is bounded
# (a node with 1,000 queues may still send 67 buckets a histogram).
MAX_REPORT_BUCKETS = 200_000
# A node buffers CAPACITY reports (15 minutes at its default 1 s interval)
# while the coordinator is away; older ones mean a clock far behind.
MAX_REPORT_AGE = CAPACITY + 5 * 60
# A node whose clock runs ahead is clamped to now by ClusterStats.ingest, not refused.

# -- Per node ---------------------------------------------------------------------

# A node reports once a second; the burst lets it send its whole buffer after
# an outage at once.
REPORTS_PER_SECOND = 20.0
REPORT_BURST = CAPACITY + 100
# Distinct queue names one node may report within QUEUE_MEMORY seconds (what
# the stats keep in memory per node and queue).
MAX_NODE_QUEUES = 1_000
QUEUE_MEMORY = RETENTION
MAX_ERROR_CHARS = 4096
# How often nodes silent for QUEUE_MEMORY are forgotten (they are then the
# same as new ones: full bucket, no queues).
PRUNE_EVERY = 60.0

# Why a node's message was refused: a fixed set, for Prometheus labels.
REASONS = ("rate", "samples", "queue", "queues", "counts", "gauges", "histogram", "time", "heartbeat")
# Characters of a caller's value quoted in an error message.
SHOWN = 40


class Invalid(ValueError):
    """A node message out of bounds; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def shown(value: str) -> str:
    """A caller's value for an error message: quoted, and cut if long."""
    return repr(value) if len(value) <= SHOWN else f"{value[:SHOWN]!r}... ({len(value)} characters)"


# -- validators ---------------------------------------------------------------------


def check_text(value: str, what: str, limit: int) -> None:
    """At most ``limit`` printable characters: no NUL (PostgreSQL refuses it in
    text) and no newline (it would forge log lines)."""
    if len(value) > limit:
        raise ValueError(f"{what} {shown(value)} is longer than {limit} characters")
    if not value.isprintable():
        raise ValueError(f"{what} {shown(value)} has control characters")


def check_node_id(node_id: str) -> None:
    if not NODE_ID.fullmatch(node_id):
        raise ValueError(f"node_id {shown(node_id)} is invalid: use 1 to {MAX_NODE_ID} letters, digits and _ . : @ -")


def check_hello(hello: node_pb2.Hello) -> None:
    """Whether a node's Hello may become its record in the store."""
    check_node_id(hello.node_id)
    check_text(hello.hostname, "hostname", MAX_HOSTNAME)
    check_text(hello.version, "version", MAX_VERSION)
    if len(hello.labels) > MAX_LABELS:
        raise ValueError(f"{len(hello.labels)} labels; at most {MAX_LABELS}")
    for key, value in hello.labels.items():
        if not LABEL_KEY.fullmatch(key):
            raise ValueError(f"label key {shown(key)} is invalid: up to 63 letters, digits and _ . - /, "
                             "starting with a letter or digit")
        if not LABEL_VALUE.fullmatch(value):
            raise ValueError(f"label {key}={shown(value)}: values are up to 255 letters, digits and _ . -")
    if len(hello.tasks) > MAX_TASKS:
        raise ValueError(f"{len(hello.tasks)} tasks; at most {MAX_TASKS}")
    for task in hello.tasks:
        check_text(task, "task name", MAX_TASK_NAME)
    if (size := sum(len(task.encode()) for task in hello.tasks)) > MAX_TASK_BYTES:
        raise ValueError(f"task names of {size:,} bytes in all; at most {MAX_TASK_BYTES:,}")
    if hello.applied_generation < 0:
        raise ValueError(f"applied_generation {hello.applied_generation} is negative")


@functools.lru_cache(maxsize=MAX_NODE_QUEUES)
def valid_queue(name: str) -> bool:
    return NAME.fullmatch(name) is not None


def check_heartbeat(heartbeat: node_pb2.Heartbeat) -> None:
    """Whether a heartbeat may be kept as the node's status (NodeInfo shows it)."""
    if len(heartbeat.queues) > MAX_NODE_QUEUES:
        raise Invalid("heartbeat", f"{len(heartbeat.queues)} queues in a heartbeat; at most {MAX_NODE_QUEUES}")
    for q in heartbeat.queues:
        if not valid_queue(q.queue):
            raise Invalid("heartbeat", f"queue name {shown(q.queue)} is invalid")
        if len(q.error) > MAX_ERROR_CHARS:
            raise Invalid("heartbeat", f"queue {q.queue}: error of {len(q.error)} characters; "
                                       f"at most {MAX_ERROR_CHARS}")
        if len(q.missing_tasks) > MAX_MISSING_TASKS:
            raise Invalid("heartbeat", f"queue {q.queue}: more than {MAX_MISSING_TASKS} missing tasks")
        try:
            check_text(q.error, "error", MAX_ERROR_CHARS)
            for task in q.missing_tasks:
                check_text(task, "missing task", MAX_TASK_NAME)
        except ValueError as exc:
            raise Invalid("heartbeat", f"queue {q.queue}: {exc}") from None


def check_queue_name(name: str) -> str:
    """A queue name to look up: one no queue can have is refused (a NUL would
    even fail the query on PostgreSQL)."""
    if not valid_queue(name):
        raise ValueError(f"queue name {shown(name)} is invalid")
    return name


def check_broker_name(name: str) -> str:
    """A broker name to look up (brokers are named like queues)."""
    if not valid_queue(name):
        raise ValueError(f"broker name {shown(name)} is invalid")
    return name


def check_node_ref(node_id: str) -> str:
    """A node id to look up: ids registered before check_node_id existed may
    use other characters, but all fit the store's column."""
    check_text(node_id, "node_id", MAX_NODE_ID)
    return node_id


def check_count(n: int, what: str, limit: int = MAX_PER_CALL) -> None:
    """At most ``limit`` items of a kind in one admin call."""
    if n > limit:
        raise ValueError(f"{n} {what} in one call; at most {limit:,}")


# -- per node ---------------------------------------------------------------------

# Node credentials one join token may make: a fleet's worth at once, then a few a second.
JOINS_PER_SECOND = 2.0
JOIN_BURST = 200.0


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved; each message (a report, a join) takes one."""

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        # max(): a wall clock stepping back must not take tokens away.
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(slots=True)
class _Node:
    bucket: TokenBucket
    last: float
    # Queue name -> when the node last reported it.
    queues: dict[str, float] = field(default_factory=dict)

    def check_queues(self, names: set[str], now: float) -> None:
        """At most MAX_NODE_QUEUES names within QUEUE_MEMORY; remember these."""
        new = len(names - self.queues.keys())
        if new and len(self.queues) + new > MAX_NODE_QUEUES:
            self.queues = {q: t for q, t in self.queues.items() if t >= now - QUEUE_MEMORY}
            if len(self.queues) + new > MAX_NODE_QUEUES:
                raise Invalid("queues", f"more than {MAX_NODE_QUEUES} distinct queues within "
                                        f"{QUEUE_MEMORY // 60} minutes")
        for name in names:
            self.queues[name] = now


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    message: str
    # The node's first refusal for this reason: worth a log line (later ones are only counted).
    first: bool


class NodeLimits:
    """Every node's rate and queue names, and the count of refused messages
    per (node, reason)."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}
        self.refused: Counter[tuple[str, str]] = Counter()
        self._pruned = 0.0

    def refuse_rate(self, node_id: str, now: float) -> Refusal | None:
        """None if the node may send a report now; else why not (and it is counted).
        Refused reports take their token too: a flood of bad ones is bounded as well."""
        if self._node(node_id, now).bucket.take(now):
            return None
        return self.refusal(node_id, Invalid("rate", f"over {REPORTS_PER_SECOND:g} reports a second "
                                                     f"(burst {REPORT_BURST})"))

    def refuse_queues(self, node_id: str, names: set[str], now: float) -> Refusal | None:
        """None if a checked report's queues are within the node's bound (and they are remembered)."""
        try:
            self._node(node_id, now).check_queues(names, now)
        except Invalid as exc:
            return self.refusal(node_id, exc)
        return None

    def refuse_heartbeat(self, node_id: str, heartbeat: node_pb2.Heartbeat) -> Refusal | None:
        try:
            check_heartbeat(heartbeat)
        except Invalid as exc:
            return self.refusal(node_id, exc)
        return None

    def refusal(self, node_id: str, exc: Invalid) -> Refusal:
        """A message refused, counted."""
        key = (node_id, exc.reason)
        self.refused[key] += 1
        return Refusal(exc.reason, str(exc), self.refused[key] == 1)

    def _node(self, node_id: str, now: float) -> _Node:
        if now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            self._nodes = {n: s for n, s in self._nodes.items() if s.last >= now - QUEUE_MEMORY}
        node = self._nodes.get(node_id)
        if node is None:
            node = self._nodes[node_id] = _Node(TokenBucket(REPORTS_PER_SECOND, REPORT_BURST, REPORT_BURST, now), now)
        node.last = now
        return node
