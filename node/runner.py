"""One queue on one node: a fetcher thread and ``concurrency`` worker threads.

The fetcher asks the broker only for as many messages as there are idle
workers (no hoarding), hands them to the workers through a small buffer, and
keeps long-running messages owned (touch). Workers run tasks and settle
them. The worker count follows the queue's concurrency live: growing starts
threads, shrinking lets surplus threads exit after their current task.

Waking a thread costs more than running a short task (a futex wake and a GIL
hand-over, 20-40 us on a VM), so threads sleep until they are needed: a
worker that finishes takes the next buffered message itself; idle workers
are woken for a new batch when the last task ran longer than HELP_AFTER,
else one when no worker is active, and more once a buffered message has
waited HELP_AFTER; the fetcher is woken when a refill's worth of slots is
free or the buffer runs dry. Short tasks then run on one or two threads,
slow ones on as many as the concurrency allows, and acks go in batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from octobot.backends import Backend, BrokerUnavailable, Delivery
from octobot.node.backoff import Backoff
from octobot.node.execute import execute, settle, settle_after_error
from octobot.node.metrics import QueueMetrics
from octobot.node.scheduler import SlotScheduler
from octobot.node.timeouts import TaskGuard
from octobot.v1 import node_pb2, queue_pb2, stats_pb2

log = logging.getLogger("octobot.node.runner")

FETCH_WAIT = 1.0  # longest a fetch waits in the broker (only while nothing is buffered)
HELP_AFTER = 0.002  # longest a buffered message waits while a worker is idle
ACK_LINGER = 0.02  # longest a finished message waits to ride on the next fetch
SLOT_WAIT = 0.05  # how soon to ask again when other queues hold the node's slots
DEFAULT_VISIBILITY = 30.0


def visibility_timeout(spec: queue_pb2.QueueSpec) -> float:
    return float(spec.options.get("visibility_timeout", DEFAULT_VISIBILITY))


class QueueRunner:
    def __init__(self, spec: queue_pb2.QueueSpec, open_backend: Callable[[queue_pb2.QueueSpec], Backend],
                 scheduler: SlotScheduler, record_stats: bool = True) -> None:
        self.spec = spec
        self._scheduler = scheduler
        self.metrics = QueueMetrics(spec.name, enabled=record_stats)
        self._backend = open_backend(spec)
        # One lock, two conditions: workers wait for messages, the fetcher for
        # free slots (or acks to send), so neither wakes the other needlessly.
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._slots = threading.Condition(self._lock)
        # Fetched, not started: (delivery, when buffered).
        self._buffer: deque[tuple[Delivery, float]] = deque()
        # Running deliveries -> start time (monotonic), for touch, time limits and gauges,
        # and the guard of the worker running it.
        self._running: dict[int, tuple[Delivery, float, TaskGuard]] = {}
        # Finished tasks whose messages the fetcher acks in one batch, and since when the first waits.
        self._acks: list[Delivery] = []
        self._acks_since = 0.0
        self._workers = 0
        self._idle = 0  # workers waiting for a message, not yet woken
        self._last_run = 0.0  # how long the last task ran: slow tasks get their workers at once
        # While the fetcher waits: the free slots at which it wants waking (None: it is not waiting).
        self._fetch_at: int | None = None
        self._no_slots_until = 0.0  # other queues hold the node's slots: don't ask before then
        self._stopping = False
        self._connected = True
        self._error = ""
        self._backlog = -1
        self._threads: list[threading.Thread] = []
        self._fetcher = threading.Thread(target=self._fetch_loop, name=f"fetch-{spec.name}", daemon=True)

    # -- control (called by the agent) -----------------------------------

    def start(self) -> None:
        self._scheduler.join(self, self.spec.priority, self.spec.concurrency, self.wake)
        self._fetcher.start()
        self._resize(self.spec.concurrency)

    def wake(self) -> None:
        """Slots came free elsewhere on the node: look again."""
        with self._lock:
            self._no_slots_until = 0.0
            self._slots.notify()

    def update(self, spec: queue_pb2.QueueSpec) -> None:
        """Apply a changed spec of the same broker binding: concurrency, pause, retries."""
        with self._lock:
            self.spec = spec
            self._wake_all()
        if spec.concurrency != self._backend.prefetch:
            self._backend.set_prefetch(spec.concurrency)
        self._scheduler.update(self, spec.priority, spec.concurrency)
        self._resize(spec.concurrency)

    def _resize(self, target: int) -> None:
        with self._lock:
            missing = target - self._workers
            self._workers = max(self._workers, target)
            self._wake_all()
        for _ in range(missing):
            t = threading.Thread(target=self._work_loop, name=f"work-{self.spec.name}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop fetching, hand unstarted messages back, let running tasks finish.
        Returns False if tasks were still running after ``timeout`` seconds."""
        with self._lock:
            self._stopping = True
            self._wake_all()
        self._fetcher.join()
        with self._lock:
            unstarted = self._take_buffer()
        self._give_back(unstarted)
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._flush_acks()
        self._scheduler.leave(self)
        finished = not any(t.is_alive() for t in self._threads)
        if finished:
            self._backend.close()
        return finished

    # -- what the agent reports -------------------------------------------

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._running)

    def status(self) -> node_pb2.QueueStatus:
        with self._lock:
            status = node_pb2.QueueStatus(queue=self.spec.name, workers=self._workers, in_flight=len(self._running),
                                          connected=self._connected, paused=self.spec.paused, error=self._error)
        status.handed_back = self.metrics.handed_back_count
        status.missing_tasks.extend(self.metrics.missing_tasks)
        return status

    def sample(self) -> stats_pb2.QueueSample:
        with self._lock:
            running, buffered = len(self._running), len(self._buffer)
        return self.metrics.take(in_flight=running + buffered, busy_slots=running, backlog=self._backlog)

    # -- threads ------------------------------------------------------------

    def _wake_all(self) -> None:
        self._idle = 0
        self._work.notify_all()
        self._slots.notify_all()

    def _wake_workers(self, count: int) -> None:
        count = min(count, self._idle)
        if count > 0:
            self._idle -= count
            self._work.notify(count)

    def _wanted(self) -> int:
        """Messages to ask for now: idle workers not already fed from the buffer."""
        if self._stopping or self.spec.paused:
            return 0
        return self._workers - len(self._running) - len(self._buffer)

    def _fetch_loop(self) -> None:
        backoff = Backoff()
        last_touch = last_depth = 0.0
        while True:
            with self._lock:
                want = self._await_fetch()
                if want is None:
                    return
                unstarted = self._take_buffer() if self.spec.paused else []
                acks, self._acks = self._acks, []
                # With messages buffered, don't sit in the broker for long: they may need idle workers woken.
                wait = HELP_AFTER if self._buffer else FETCH_WAIT
            self._give_back(unstarted)
            granted = self._scheduler.acquire(self, want)
            try:
                batch = self._backend.ack_and_fetch(acks, granted, wait)
                now = time.monotonic()
                if now - last_touch > visibility_timeout(self.spec) / 3:
                    self._touch_running(now)
                    last_touch = now
                if now - last_depth > 2.0:
                    self._backlog = self._backend.depth()
                    last_depth = now
            except Exception as exc:  # broker down, or a reply we did not expect: keep the fetcher alive
                self._scheduler.release(self, granted)
                self._set_connected(False, str(exc) if isinstance(exc, BrokerUnavailable) else f"{type(exc).__name__}: {exc}")
                if acks:
                    log.warning("queue %s: %d finished messages could not be acked; the broker will "
                                "redeliver them", self.spec.name, len(acks))
                self._sleep(backoff.next())
                continue
            self._set_connected(True, "")
            backoff.reset()
            if granted:
                self._scheduler.release(self, granted - len(batch), found_work=bool(batch))
            elif want > 0:
                with self._lock:
                    self._no_slots_until = time.monotonic() + SLOT_WAIT
            if batch:
                with self._lock:
                    # Paused or stopped while the fetch was waiting: run none of it.
                    keep = not (self.spec.paused or self._stopping)
                    if keep:
                        now = time.monotonic()
                        self._buffer.extend([(delivery, now) for delivery in batch])
                        if self._last_run > HELP_AFTER:
                            self._wake_workers(len(batch))
                        elif self._idle >= self._workers:
                            self._wake_workers(1)  # nobody is active; more join if messages wait
                if not keep:
                    self._give_back(batch)

    def _await_fetch(self) -> int | None:
        """Under the lock: wait until a fetch (or an ack flush) is due, waking idle workers for
        messages that wait too long meanwhile. How many messages to ask for; None to stop."""
        while True:
            if self._stopping:
                return None
            now = time.monotonic()
            deadline = now + FETCH_WAIT
            if self._buffer:
                help_at = self._buffer[0][1] + HELP_AFTER
                if help_at <= now:
                    self._wake_workers(len(self._buffer))
                else:
                    deadline = min(deadline, help_at)
            if self.spec.task_timeout > 0 and self._running:
                deadline = min(deadline, self._interrupt_overdue(now))
            want = self._wanted()
            refill = max(1, self._workers // 4) if self._buffer else 1
            if want >= refill and now >= self._no_slots_until:
                return want
            if self._no_slots_until > now:
                deadline = min(deadline, self._no_slots_until)
            if self._acks:
                flush_at = self._acks_since + ACK_LINGER
                if flush_at <= now or len(self._acks) >= self._workers:
                    return 0
                deadline = min(deadline, flush_at)
            if self._paused_with_buffer():
                return 0
            self._fetch_at = refill
            self._slots.wait(deadline - now)
            self._fetch_at = None

    def _interrupt_overdue(self, now: float) -> float:
        """Interrupt tasks past the queue's task_timeout; when the next one is due."""
        limit = self.spec.task_timeout
        due = [(started + limit, guard) for _, started, guard in self._running.values()]
        for at, guard in due:
            if at <= now and guard.interrupt():
                log.warning("queue %s: a task ran past its task_timeout of %g s; interrupting it",
                            self.spec.name, limit)
        return min((at for at, _ in due if at > now), default=now + FETCH_WAIT)

    def _work_loop(self) -> None:
        guard = TaskGuard()
        while True:
            with self._lock:
                while not self._buffer and not self._stopping and self._workers <= self.spec.concurrency:
                    if self._fetch_at is not None:
                        self._slots.notify()  # the buffer ran dry: refill now
                    self._idle += 1
                    self._work.wait()
                if self._stopping or self._workers > self.spec.concurrency:
                    # Surplus after a shrink, or shutting down: leave after the task we finished.
                    self._workers -= 1
                    self._slots.notify()
                    return
                delivery, _ = self._buffer.popleft()
                self._running[id(delivery)] = (delivery, time.monotonic(), guard)
            ack_later = False
            try:
                # Acked with the fetcher's next round trip, in one batch.
                ack_later = execute(delivery, self.spec, self._backend, self.metrics, guard)
            except Exception as exc:  # a bug of ours, or a task's exception that cannot be shown
                log.exception("unexpected error running a message on %s", self.spec.name)
                settle_after_error(delivery, self._backend, self.metrics, exc)
            finally:
                self._scheduler.release(self, 1)  # first, so a fetcher woken below finds the slot free
                with self._lock:
                    now = time.monotonic()
                    self._last_run = now - self._running.pop(id(delivery))[1]
                    if ack_later:
                        if not self._acks:
                            self._acks_since = now
                        self._acks.append(delivery)
                    self._no_slots_until = 0.0
                    if self._fetch_at is not None and self._wanted() >= self._fetch_at:
                        self._slots.notify()

    def _flush_acks(self) -> None:
        with self._lock:
            acks, self._acks = self._acks, []
        settle(self._backend, "ack", acks)

    def _touch_running(self, now: float) -> None:
        old = visibility_timeout(self.spec) / 3
        with self._lock:
            slow = [d for d, started, _ in self._running.values() if now - started > old]
        self._backend.touch(slow)

    def _paused_with_buffer(self) -> bool:
        return self.spec.paused and bool(self._buffer)

    def _take_buffer(self) -> list[Delivery]:
        unstarted = [delivery for delivery, _ in self._buffer]
        self._buffer.clear()
        return unstarted

    def _give_back(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        self._scheduler.release(self, len(deliveries))
        try:
            self._backend.release(deliveries)
        except BrokerUnavailable as exc:
            log.warning("could not release %d messages on %s; the broker redelivers them after the "
                        "visibility timeout: %s", len(deliveries), self.spec.name, exc)

    def _set_connected(self, connected: bool, error: str) -> None:
        if connected != self._connected:
            # One line per state change, not per attempt.
            if connected:
                log.info("queue %s: broker connection restored", self.spec.name)
            else:
                log.warning("queue %s: broker unavailable, retrying with backoff: %s", self.spec.name, error)
        self._connected, self._error = connected, error

    def _sleep(self, seconds: float) -> None:
        with self._lock:
            self._wake_workers(len(self._buffer))  # nobody wakes them while the fetcher sleeps
            self._slots.wait_for(lambda: self._stopping, timeout=seconds)
