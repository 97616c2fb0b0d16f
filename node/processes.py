"""`octobot-node --processes N`: N worker processes behind one node.

Threads share one GIL, so CPU-bound tasks need processes. The pool registers
as one node; each child runs an Agent with a share of every queue's
concurrency (and of --max-workers), under its own consumer name. The parent
keeps the coordinator session, forwards each assignment to the children,
merges their heartbeats and stats, and restarts a child that dies (the broker
redelivers what it held unacked).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from octobot import middleware, tasks
from octobot.histogram import Histogram
from octobot.logs import setup_logging
from octobot.outcomes import SAMPLE_COUNTS
from octobot.node import notify
from octobot.node.agent import Agent
from octobot.node.metrics import MAX_MISSING_TASKS
from octobot.node.notify import MailSettings
from octobot.secrets import SecretSources
from octobot.node.state import StateDir
from octobot.v1 import node_pb2, queue_pb2, stats_pb2

log = logging.getLogger("octobot.node.processes")

SUPERVISE_EVERY = 0.5


def share(total: int, index: int, count: int) -> int:
    """Child ``index``'s part of ``total`` split as evenly as whole numbers allow."""
    return total // count + (1 if index < total % count else 0)


def split(assignment: queue_pb2.Assignment, index: int, count: int) -> queue_pb2.Assignment:
    """The part of an assignment one child runs: its share of each queue's
    concurrency; a queue whose share is 0 is not run by that child."""
    part = queue_pb2.Assignment(generation=assignment.generation, drain=assignment.drain)
    for spec in assignment.queues:
        concurrency = share(spec.concurrency, index, count)
        if concurrency:
            child_spec = part.queues.add()
            child_spec.CopyFrom(spec)
            child_spec.concurrency = concurrency
    return part


def merge_heartbeats(beats: list[node_pb2.Heartbeat]) -> node_pb2.Heartbeat:
    merged: dict[str, node_pb2.QueueStatus] = {}
    for beat in beats:
        for status in beat.queues:
            into = merged.setdefault(status.queue, node_pb2.QueueStatus(queue=status.queue, connected=True))
            into.workers += status.workers
            into.in_flight += status.in_flight
            into.connected = into.connected and status.connected
            into.paused = status.paused
            into.error = into.error or status.error
            into.handed_back += status.handed_back
            into.missing_tasks.extend(t for t in status.missing_tasks if t not in into.missing_tasks
                                      and len(into.missing_tasks) < MAX_MISSING_TASKS)
    return node_pb2.Heartbeat(queues=list(merged.values()), drained=bool(beats) and all(b.drained for b in beats))


def merge_samples(samples: list[stats_pb2.QueueSample], latest: list[stats_pb2.QueueSample]) -> stats_pb2.QueueSample:
    """One queue's samples from several children as one: counts add up and
    histograms merge over ``samples``; gauges add up over each child's
    ``latest`` sample; the backlog (one broker queue) is the largest seen."""
    out = stats_pb2.QueueSample(queue=samples[0].queue, backlog=-1)
    for s in latest:
        out.in_flight += s.in_flight
        out.busy_slots += s.busy_slots
        out.backlog = max(out.backlog, s.backlog)
    hists: dict[str, Histogram] = {}
    for s in samples:
        for name in SAMPLE_COUNTS:
            setattr(out, name, getattr(out, name) + getattr(s, name))
        for name in ("run_time", "wait_time", "end_to_end"):
            h = Histogram.from_proto(getattr(s, name))
            if name in hists:
                hists[name].merge(h)
            else:
                hists[name] = h
    for name, h in hists.items():
        getattr(out, name).CopyFrom(h.to_proto())
    return out


def _child_main(conn: Connection, consumer_name: str, task_modules: list[str], interval: float,
                drain_timeout: float, max_workers: int | None, log_level: str, record_stats: bool,
                secret_sources: SecretSources, mail: MailSettings | None, middleware_names: list[str]) -> None:
    """A worker process: apply what the parent sends, report every interval."""
    setup_logging(log_level)
    if mail is not None:
        notify.install(mail)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which tells us to stop
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tasks.import_modules(task_modules)
    middleware.install(*(middleware.load(name) for name in middleware_names))  # the parent loaded them once already
    agent = Agent(consumer_name, drain_timeout=drain_timeout, max_workers=max_workers, record_stats=record_stats,
                  secret_sources=secret_sources)
    while not stop.is_set():
        if conn.poll(interval):
            kind, payload = conn.recv()
            if kind == "stop":
                break
            agent.apply(queue_pb2.Assignment.FromString(payload))
        conn.send(("report", agent.heartbeat().SerializeToString(), agent.stats().SerializeToString()))
    agent.shutdown()
    conn.send(("report", agent.heartbeat().SerializeToString(), agent.stats().SerializeToString()))


class _Child:
    def __init__(self, index: int) -> None:
        self.index = index
        self.process: Any = None
        self.conn: Connection | None = None
        self.heartbeat = node_pb2.Heartbeat()
        self.reports: list[node_pb2.StatsReport] = []


class ProcessPool:
    """Runs a node's queues in ``count`` child processes (the Workers of a session)."""

    def __init__(self, node_id: str, count: int, task_modules: list[str], *, interval: float, drain_timeout: float,
                 max_workers: int | None, log_level: str, cache: StateDir | None = None,
                 record_stats: bool = True, secret_sources: SecretSources = SecretSources(),
                 mail: MailSettings | None = None, middleware_names: list[str] | None = None) -> None:
        self.node_id, self.count, self.cache = node_id, count, cache
        self._args = (task_modules, interval, drain_timeout, log_level, record_stats, secret_sources, mail,
                      middleware_names or [])
        self._max_workers = max_workers
        self.drain_timeout = drain_timeout
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._children = [_Child(i) for i in range(count)]
        self._assignment = queue_pb2.Assignment()
        self._stopping = threading.Event()
        self.generation = 0
        for child in self._children:
            self._start(child)
        threading.Thread(target=self._supervise, name="supervise", daemon=True).start()

    def _start(self, child: _Child) -> None:
        parent_end, child_end = self._ctx.Pipe()
        budget = None if self._max_workers is None else max(1, share(self._max_workers, child.index, self.count))
        task_modules, interval, drain_timeout, log_level, record_stats, secret_sources, mail, names = self._args
        child.process = self._ctx.Process(
            target=_child_main, name=f"octobot-worker-{child.index}",
            args=(child_end, f"{self.node_id}/{child.index}", task_modules, interval, drain_timeout,
                  budget, log_level, record_stats, secret_sources, mail, names))
        child.process.start()
        child_end.close()
        child.conn = parent_end
        threading.Thread(target=self._read, args=(child, parent_end), name=f"read-{child.index}", daemon=True).start()
        if self._assignment.generation:
            self._send(child, ("apply", split(self._assignment, child.index, self.count).SerializeToString()))

    def _read(self, child: _Child, conn: Connection) -> None:
        while True:
            try:
                _, beat, report = conn.recv()
            except (EOFError, OSError):
                return
            with self._lock:
                child.heartbeat = node_pb2.Heartbeat.FromString(beat)
                child.reports.append(node_pb2.StatsReport.FromString(report))

    def _send(self, child: _Child, message: tuple[str, bytes]) -> None:
        try:
            assert child.conn is not None
            child.conn.send(message)
        except (OSError, ValueError):
            pass  # the child died; the supervisor restarts it with the current assignment

    def _supervise(self) -> None:
        while not self._stopping.wait(SUPERVISE_EVERY):
            for child in self._children:
                if not child.process.is_alive() and not self._stopping.is_set():
                    log.warning("worker process %d died (exit code %s); restarting it; the broker redelivers "
                                "what it held", child.index, child.process.exitcode)
                    self._start(child)

    # -- the Workers interface ------------------------------------------------

    def apply(self, assignment: queue_pb2.Assignment) -> None:
        self._assignment = assignment
        self.generation = assignment.generation
        if self.cache is not None:
            self.cache.save_assignment(assignment)
        for child in self._children:
            self._send(child, ("apply", split(assignment, child.index, self.count).SerializeToString()))

    def heartbeat(self) -> node_pb2.Heartbeat:
        with self._lock:
            return merge_heartbeats([c.heartbeat for c in self._children])

    def stats(self) -> node_pb2.StatsReport:
        """The children's samples since the last call, merged per queue."""
        with self._lock:
            per_child = [c.reports for c in self._children]
            for c in self._children:
                c.reports = []
        every: dict[str, list[stats_pb2.QueueSample]] = {}
        latest: dict[str, list[stats_pb2.QueueSample]] = {}
        for reports in per_child:
            for report in reports:
                for sample in report.samples:
                    every.setdefault(sample.queue, []).append(sample)
            for sample in reports[-1].samples if reports else []:
                latest.setdefault(sample.queue, []).append(sample)
        merged = node_pb2.StatsReport(samples=[merge_samples(s, latest.get(q, [])) for q, s in every.items()])
        merged.at.GetCurrentTime()
        return merged

    def shutdown(self) -> None:
        self._stopping.set()
        for child in self._children:
            self._send(child, ("stop", b""))
        deadline = time.monotonic() + self.drain_timeout + 5
        for child in self._children:
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                child.process.kill()
