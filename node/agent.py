"""The agent: applies assignments to queue runners and reports what they do.

Assignments are full snapshots; applying one starts runners for new queues,
stops runners for queues no longer listed (their in-flight work finishes),
and updates the rest in place.
"""

from __future__ import annotations

import logging
import threading

from octobot import backends
from octobot.backends import Backend
from octobot.node.runner import QueueRunner, visibility_timeout
from octobot.node.scheduler import SlotScheduler
from octobot.node.state import StateDir
from octobot.queue_specs import binding
from octobot.secrets import SecretSources, redact_text, resolve
from octobot.v1 import node_pb2, queue_pb2

log = logging.getLogger("octobot.node")

# Characters of a queue's error a heartbeat carries (the coordinator takes up to 4,096).
ERROR_CHARS = 1000


class Agent:
    """Runs a node's queues in this process, as threads."""

    def __init__(self, consumer_name: str, drain_timeout: float = 30.0, max_workers: int | None = None,
                 cache: StateDir | None = None, record_stats: bool = True,
                 secret_sources: SecretSources = SecretSources()) -> None:
        self.consumer_name = consumer_name
        # The files and variables the node's operator lets broker URLs reference.
        self.secret_sources = secret_sources
        self.record_stats = record_stats
        self.cache = cache
        self.scheduler = SlotScheduler(max_workers)
        self.drain_timeout = drain_timeout
        self._lock = threading.Lock()
        self._runners: dict[str, QueueRunner] = {}
        # Runners being stopped in the background, until their tasks finish.
        self._stopping: set[QueueRunner] = set()
        # Queues that could not start (an unresolvable secret, a broken spec) and why:
        # reported as broker errors, tried again with the next assignment.
        self._failed: dict[str, str] = {}
        self.generation = 0
        self.draining = False

    def apply(self, assignment: queue_pb2.Assignment) -> None:
        with self._lock:
            self.draining = assignment.drain
            wanted = {q.name: q for q in assignment.queues}
            self._failed = {}
            for name in list(self._runners):
                spec = wanted.get(name)
                # A new broker binding means a new runner.
                if spec is None or binding(spec) != binding(self._runners[name].spec):
                    self._stop_later(self._runners.pop(name))
            for name, spec in wanted.items():
                runner = self._runners.get(name)
                if runner is None:
                    try:
                        runner = QueueRunner(spec, self._open_backend, self.scheduler, self.record_stats)
                    except Exception as exc:  # a broken spec must not stop the other queues
                        log.error("cannot start queue %s: %s", name, exc)
                        self._failed[name] = f"cannot start: {exc}"
                        continue
                    self._runners[name] = runner
                    runner.start()
                    log.info("queue %s started: %s %s, concurrency %d", name, spec.backend, spec.url, spec.concurrency)
                elif runner.spec != spec:
                    runner.update(spec)
                    log.info("queue %s updated: concurrency %d, paused %s", name, spec.concurrency, spec.paused)
            self.generation = assignment.generation
            if self.cache is not None:
                self.cache.save_assignment(assignment)

    def _open_backend(self, spec: queue_pb2.QueueSpec) -> Backend:
        # Secrets are resolved here, on the node, right before connecting.
        return backends.open_backend(spec.backend, spec.name, resolve(spec.url, self.secret_sources), dict(spec.options),
                                     consumer_name=self.consumer_name, visibility_timeout=visibility_timeout(spec),
                                     prefetch=spec.concurrency)

    def _stop_later(self, runner: QueueRunner) -> None:
        """Stop a runner without blocking the session: its tasks finish in the background."""
        self._stopping.add(runner)

        def stop() -> None:
            runner.stop()
            log.info("queue %s stopped", runner.spec.name)
            with self._lock:
                self._stopping.discard(runner)

        threading.Thread(target=stop, name=f"stop-{runner.spec.name}", daemon=True).start()

    def heartbeat(self) -> node_pb2.Heartbeat:
        with self._lock:
            queues = [r.status() for r in self._runners.values()]
            queues += [node_pb2.QueueStatus(queue=name, connected=False, error=error)
                       for name, error in self._failed.items()]
            drained = self.draining and not self._runners and not self._stopping
        for status in queues:
            # A broker's error may quote its URL, and span lines: the coordinator takes one printable line.
            line = " ".join(redact_text(status.error).split())
            status.error = "".join(c if c.isprintable() else " " for c in line)[:ERROR_CHARS]
        return node_pb2.Heartbeat(queues=queues, drained=drained)

    def stats(self) -> node_pb2.StatsReport:
        with self._lock:
            runners = list(self._runners.values()) + list(self._stopping)
        report = node_pb2.StatsReport(samples=[r.sample() for r in runners])
        report.at.GetCurrentTime()
        return report

    def shutdown(self) -> None:
        """Stop fetching everywhere, give unstarted messages back, and wait up to
        the drain timeout for running tasks."""
        with self._lock:
            runners = list(self._runners.values())
            self._runners.clear()
        stops = [threading.Thread(target=r.stop, args=(self.drain_timeout,)) for r in runners]
        for t in stops:
            t.start()
        for t in stops:
            t.join()
        unfinished = sum(r.in_flight for r in runners)
        if unfinished:
            log.warning("drain timeout: %d tasks still running are left unacked; the broker redelivers them",
                        unfinished)
