"""The node's core without servers or processes: the slot shares as a pure
function, execute's ack / retry / dead-letter / hand-back decisions on a real
(in-memory) backend, and a queue runner's threads around them."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import octobot
from octobot.backends.memory import MemoryBackend
from octobot.envelope import Envelope
from octobot.node.execute import HAND_BACK_DELAY, execute, retry_delay
from octobot.node.metrics import QueueMetrics
from octobot.node.runner import QueueRunner
from octobot.node.scheduler import SlotScheduler, shares
from octobot.node.timeouts import TaskGuard
from octobot.v1 import queue_pb2

RAN: list[tuple[str, int]] = []  # (run id, item) of every unit.record run
LOCK = threading.Lock()


@octobot.task(name="unit.record")
def record(run: str, item: int, sleep: float = 0.0) -> None:
    time.sleep(sleep)
    with LOCK:
        RAN.append((run, item))


@octobot.task(name="unit.fail")
def fail() -> None:
    raise ValueError("no luck")


# -- slot shares ----------------------------------------------------------------

def test_shares_follow_priority_within_concurrency() -> None:
    assert shares(10, {"a": (8, 100), "b": (2, 100)}) == {"a": 8, "b": 2}
    assert shares(10, {"a": (8, 3), "b": (2, 100)}) == {"a": 3, "b": 7}, "a capped queue leaves the rest to others"
    assert shares(3, {"a": (1, 9), "b": (1, 9), "c": (1, 9), "d": (1, 9)}) == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert shares(10, {}) == {}
    assert sum(shares(10, {"a": (5, 100), "b": (5, 100), "c": (5, 100)}).values()) == 10, "the remainder is given"


@given(st.integers(1, 64), st.dictionaries(st.integers(0, 20), st.tuples(st.integers(1, 10), st.integers(1, 100)),
                                           max_size=12))
def test_shares_invariants(budget: int, hungry: dict[int, tuple[int, int]]) -> None:
    got = shares(budget, hungry)
    assert got.keys() == hungry.keys()
    assert all(1 <= got[n] <= max(1, c) for n, (_, c) in hungry.items())
    assert sum(got.values()) <= max(budget, len(hungry))
    # Nobody wanting more gets less than a queue of lower priority.
    for a, (pa, ca) in hungry.items():
        for b, (pb, _) in hungry.items():
            if pa > pb and got[a] < ca:
                assert got[a] >= got[b]


def test_scheduler_grants_within_the_budget() -> None:
    scheduler = SlotScheduler(4)
    scheduler.join("hi", 9, 10, lambda: None)
    scheduler.join("lo", 1, 10, lambda: None)
    assert scheduler.acquire("hi", 10) == 3  # 9/10 of 4, and the other at least one
    assert scheduler.acquire("lo", 10) == 1
    assert scheduler.acquire("hi", 10) == 0, "nothing is free"
    scheduler.release("lo", 1, found_work=False)  # its queue is empty: it takes no share
    assert scheduler.acquire("hi", 10) == 1
    assert SlotScheduler(None).acquire("any", 7) == 7


# -- execute ----------------------------------------------------------------------

@pytest.fixture
def backend() -> Iterator[MemoryBackend]:
    yield MemoryBackend(f"q-{uuid.uuid4().hex[:8]}", f"memory://unit-{uuid.uuid4().hex[:8]}")


def _spec(**values: object) -> queue_pb2.QueueSpec:
    settings: dict[str, object] = {"max_retries": 2, "retry_backoff": 0.05, "max_message_bytes": 1 << 20, **values}
    return queue_pb2.QueueSpec(name="q", backend="memory", **settings)  # type: ignore[arg-type]


def _run(backend: MemoryBackend, body: bytes, spec: queue_pb2.QueueSpec | None = None) -> tuple[bool, QueueMetrics]:
    backend.publish([body])
    [delivery] = backend.fetch(1, 1.0)
    metrics = QueueMetrics("q")
    ok = execute(delivery, spec or _spec(), backend, metrics, TaskGuard())
    if ok:
        backend.ack([delivery])
    return ok, metrics


def test_a_task_that_succeeds_is_acked_by_the_caller(backend: MemoryBackend) -> None:
    run = uuid.uuid4().hex
    ok, metrics = _run(backend, Envelope.new("unit.record", [run, 1]).encode())
    assert ok and (run, 1) in RAN
    assert backend.depth() == 0 and backend.fetch(1, 0.1) == [] and backend.dead_list() == []
    assert metrics.take(0, 0, 0).succeeded == 1


def test_a_failure_is_retried_with_the_next_attempt_then_dead_lettered(backend: MemoryBackend) -> None:
    body = Envelope.new("unit.fail").encode()
    for attempt in range(3):  # max_retries=2: attempts 0, 1, 2
        ok, metrics = _run(backend, body)
        assert not ok
        if attempt < 2:
            assert metrics.retried == 1 and backend.depth() == 0, "the retry waits for its backoff"
            [delivery] = backend.fetch(1, 2.0)
            body = delivery.body
            backend.ack([delivery])
            assert Envelope.parse(body).attempt == attempt + 1
    [dead] = backend.dead_list()
    assert dead.reason == "failed after 3 attempt(s): ValueError: no luck"
    assert "ValueError: no luck" in dead.error and metrics.dead_lettered == 1


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "not JSON"),
    (b'{"task": "unit.nobody"}', "unknown task 'unit.nobody'"),
    (b'{"task": "unit.record", "args": ["x' + b"y" * 2000 + b'"]}', "over the 1000-byte limit"),
])
def test_a_message_that_cannot_run_is_dead_lettered_unread(backend: MemoryBackend, body: bytes, reason: str) -> None:
    ok, metrics = _run(backend, body, _spec(max_message_bytes=1000))
    [dead] = backend.dead_list()
    assert not ok and reason in dead.reason and dead.body == body and metrics.rejected == 1


def test_a_task_another_node_has_is_handed_back_not_dead(backend: MemoryBackend) -> None:
    body = Envelope.new("unit.elsewhere").encode()
    ok, metrics = _run(backend, body, _spec(served_tasks=["unit.elsewhere"]))
    assert not ok and backend.dead_list() == [] and metrics.handed_back_count == 1
    [back] = backend.fetch(1, HAND_BACK_DELAY * 1.5 + 1)
    assert back.body == body, "handed back as it was, same attempt"


def test_retry_delays_double_with_jitter_and_stay_bounded() -> None:
    assert all(0.5 <= retry_delay(1.0, 0) <= 1.5 for _ in range(100))
    assert all(4.0 <= retry_delay(1.0, 3) <= 12.0 for _ in range(100))
    assert retry_delay(1.0, 10**9) <= 3600 * 1.5, "a producer's huge attempt number cannot overflow"


# -- a queue runner's threads ------------------------------------------------------

def _runner(backend: MemoryBackend, concurrency: int) -> QueueRunner:
    spec = queue_pb2.QueueSpec(name=backend.queue, backend="memory", url=backend.url, concurrency=concurrency,
                               priority=5, max_retries=0, max_message_bytes=1 << 20)
    runner = QueueRunner(spec, lambda s: MemoryBackend(s.name, s.url, prefetch=s.concurrency), SlotScheduler(None))
    runner.start()
    return runner


def _ran(run: str) -> list[int]:
    with LOCK:
        return [item for r, item in RAN if r == run]


def _wait(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_runner_runs_every_message_once(backend: MemoryBackend) -> None:
    run = uuid.uuid4().hex
    runner = _runner(backend, 8)
    try:
        backend.publish([Envelope.new("unit.record", [run, i]).encode() for i in range(500)])
        _wait(lambda: len(_ran(run)) >= 500)
    finally:
        assert runner.stop(timeout=10)
    assert sorted(_ran(run)) == list(range(500))
    assert backend.depth() == 0 and backend.dead_list() == []
    assert runner.metrics.take(0, 0, 0).succeeded == 500


def test_stopping_a_runner_hands_back_what_it_has_not_started(backend: MemoryBackend) -> None:
    run = uuid.uuid4().hex
    runner = _runner(backend, 2)
    backend.publish([Envelope.new("unit.record", [run, i, 0.2]).encode() for i in range(20)])
    _wait(lambda: len(_ran(run)) >= 2)
    assert runner.stop(timeout=10)
    done = len(_ran(run))
    assert done < 20 and backend.depth() == 20 - done, "each message ran, or is back in the queue"
