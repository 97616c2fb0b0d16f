"""Running one message: decode, look up the task, run it, then ack, retry
or dead-letter. The message is acked only after the task has finished."""

from __future__ import annotations

import logging
import random
import time
import traceback

from octobot import middleware, tasks
from octobot.backends import Backend, BrokerUnavailable, Delivery
from octobot.envelope import BadMessage, Envelope
from octobot.node.metrics import QueueMetrics
from octobot.node.timeouts import TaskGuard, TaskTimeout
from octobot.v1 import queue_pb2

log = logging.getLogger("octobot.node.execute")

# Marks the log records of dead letters (node/notify.py mails them).
DEAD_LETTER = {"octobot_dead_letter": True}
MAX_BACKOFF = 3600.0
# Doublings past this reach MAX_BACKOFF anyway; a message's attempt (any
# number a producer wrote) must not overflow the float.
MAX_DOUBLINGS = 64
# Seconds before a message whose task this node lacks comes back to the
# queue: long enough that the nodes that have the task take it first.
HAND_BACK_DELAY = 1.0


def retry_delay(base: float, attempt: int) -> float:
    """Exponential backoff with full jitter around the nominal delay."""
    nominal = min(MAX_BACKOFF, base * (2 ** min(attempt, MAX_DOUBLINGS)))
    return nominal * random.uniform(0.5, 1.5)


def execute(delivery: Delivery, spec: queue_pb2.QueueSpec, backend: Backend, metrics: QueueMetrics,
            guard: TaskGuard) -> bool:
    """Run one message on the thread ``guard`` belongs to. Failures are retried or dead-lettered
    here; True means the task succeeded and the caller must ack the message (acks are batched)."""
    try:
        envelope = Envelope.parse(delivery.body, spec.max_message_bytes)
    except BadMessage as exc:
        _reject(delivery, backend, metrics, exc.reason)
        return False
    fn = tasks.lookup(envelope.task)
    if fn is None:
        if envelope.task in spec.served_tasks:
            _hand_back(delivery, backend, metrics, envelope.task)
        else:
            _reject(delivery, backend, metrics, f"unknown task {envelope.task!r}")
        return False

    hooks = middleware.installed()
    task = middleware.TaskInfo(spec.name, envelope.task, envelope.id, envelope.attempt, envelope.args,
                               envelope.kwargs) if hooks else None
    started = time.time()
    try:
        for hook in hooks:  # inside the try: a hook that raises fails the task
            hook.before_task(task)  # type: ignore[arg-type]
        with guard:
            fn(*envelope.args, **envelope.kwargs)
    except (Exception, TaskTimeout) as exc:
        metrics.finished(False, envelope.enqueued_at, started, time.time())
        if isinstance(exc, TaskTimeout):
            exc = TaskTimeout(f"ran longer than the queue's task_timeout of {spec.task_timeout:g} s")
        retrying = _failed(delivery, spec, backend, metrics, envelope, exc)
        if hooks:
            middleware.failed(hooks, task, exc, retrying)  # type: ignore[arg-type]
        return False
    metrics.finished(True, envelope.enqueued_at, started, time.time())
    if hooks:
        middleware.after(hooks, task)  # type: ignore[arg-type]
    return True


def _failed(delivery: Delivery, spec: queue_pb2.QueueSpec, backend: Backend, metrics: QueueMetrics,
            envelope: Envelope, exc: BaseException) -> bool:
    """Retry or dead-letter a failed task; True if it runs again."""
    max_retries = spec.max_retries if envelope.max_retries is None else envelope.max_retries
    if envelope.attempt < max_retries:
        delay = retry_delay(spec.retry_backoff, envelope.attempt)
        log.info("task %s (%s) failed on attempt %d, retrying in %.1fs: %s",
                 envelope.task, envelope.id, envelope.attempt + 1, delay, shown(exc))
        if settle(backend, "retry", delivery, envelope.next_attempt().encode(), delay):
            metrics.count(retried=1)
        return True
    reason = f"failed after {envelope.attempt + 1} attempt(s): {shown(exc)}"
    log.warning("task %s (%s) dead-lettered on %s: %s", envelope.task, envelope.id, backend.queue, reason,
                extra=DEAD_LETTER)
    if settle(backend, "dead_letter", delivery, reason, traceback.format_exc()):
        metrics.count(dead_lettered=1)
    return False


def _hand_back(delivery: Delivery, backend: Backend, metrics: QueueMetrics, task: str) -> None:
    """Another node of the queue has the task: the message goes back to the
    queue as it is (same attempt), for a while, so that node runs it."""
    if metrics.handed_back(task):
        log.warning("queue %s: task %r is not registered on this node but is on others serving the queue; "
                    "its messages are handed back to them (a node on older code?)", backend.queue, task)
    settle(backend, "retry", delivery, delivery.body, retry_delay(HAND_BACK_DELAY, 0))


def _reject(delivery: Delivery, backend: Backend, metrics: QueueMetrics, reason: str) -> None:
    log.warning("message on %s dead-lettered unread: %s", backend.queue, reason, extra=DEAD_LETTER)
    if settle(backend, "dead_letter", delivery, reason):
        metrics.count(rejected=1)


def shown(exc: BaseException) -> str:
    """A task's exception in words; a task may raise one whose str() raises too."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return f"{type(exc).__name__} (its message could not be read)"


def settle_after_error(delivery: Delivery, backend: Backend, metrics: QueueMetrics, exc: Exception) -> None:
    """A message whose run or settling raised what nothing expected still
    ends somewhere: in the dead letters, with the error's type, or else back
    in the queue. Left unsettled, it would hold its slot (AMQP's prefetch)
    until the connection closed, and a few such messages stop the queue."""
    try:
        backend.dead_letter(delivery, f"octobot could not settle the message: {type(exc).__name__}")
        metrics.count(dead_lettered=1)
        return
    except Exception as err:
        log.warning("could not dead-letter a message on %s, handing it back: %s: %s", backend.queue,
                    type(err).__name__, err)
    try:
        backend.release([delivery])
    except Exception as err:
        log.warning("could not hand a message back on %s either; the broker redelivers it after the "
                    "visibility timeout: %s: %s", backend.queue, type(err).__name__, err)


def settle(backend: Backend, action: str, *args: object) -> bool:
    """Ack, retry or dead-letter; if the broker is gone the message stays unacked
    and comes back after the visibility timeout (at least once)."""
    try:
        getattr(backend, action)(*args)
        return True
    except BrokerUnavailable as exc:
        log.warning("could not %s a message on %s, it will be redelivered: %s", action, backend.queue, exc)
        return False
