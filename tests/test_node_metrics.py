"""A queue's interval accumulator: tasks recorded from many threads while
intervals are taken are each counted once, with their latencies."""

from __future__ import annotations

import threading

import pytest

from octobot.histogram import Histogram
from octobot.node.metrics import QueueMetrics

THREADS, PER_THREAD = 8, 20_000


def test_concurrent_records_and_takes_count_every_task_once() -> None:
    metrics = QueueMetrics("q")
    samples, done = [], threading.Event()

    def work(i: int) -> None:
        for n in range(PER_THREAD):
            ok = n % 10 != 0
            # run 1 ms for thread 0 and 3 ms for the others; 2 ms of wait; one in 5 has no enqueue time
            enqueued = 0.0 if n % 5 == 1 else 100.0
            metrics.finished(ok, enqueued, 100.002, 100.002 + (0.001 if i == 0 else 0.003))

    def take() -> None:
        while not done.is_set():
            samples.append(metrics.take(in_flight=0, busy_slots=0, backlog=0))

    taker = threading.Thread(target=take)
    taker.start()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    taker.join()
    samples.append(metrics.take(in_flight=0, busy_slots=0, backlog=0))

    assert len(samples) > 2  # intervals were taken while tasks were recorded
    total = THREADS * PER_THREAD
    assert sum(s.succeeded for s in samples) == total * 9 // 10
    assert sum(s.failed for s in samples) == total // 10
    run, wait = Histogram(), Histogram()
    for s in samples:
        run.merge(Histogram.from_proto(s.run_time))
        wait.merge(Histogram.from_proto(s.wait_time))
    assert run.count == total and wait.count == total * 4 // 5
    assert run.quantile(0.1) == pytest.approx(0.001, rel=0.01)
    assert run.quantile(0.9) == pytest.approx(0.003, rel=0.01)
    assert wait.quantile(0.5) == pytest.approx(0.002, rel=0.01)


def test_off_records_nothing_but_outcome_counters() -> None:
    metrics = QueueMetrics("q", enabled=False)
    metrics.finished(True, 100.0, 100.1, 100.2)
    metrics.count(retried=2, dead_lettered=1)
    sample = metrics.take(in_flight=3, busy_slots=2, backlog=7)
    assert (sample.succeeded, sample.failed, sample.retried, sample.dead_lettered) == (0, 0, 2, 1)
    assert (sample.in_flight, sample.busy_slots, sample.backlog) == (3, 2, 7)


def test_implausible_enqueue_times_are_left_out_of_latencies_and_counted() -> None:
    """A message claiming it was enqueued in 1970 added 1.78e7 s to the wait mean."""
    m = QueueMetrics("q")
    now = 1_800_000_000.0
    for enqueued in (now - 0.5, 1.0, now - 31 * 86400, now + 3600, 0.0, now + 10):
        m.finished(True, enqueued, now, now + 0.1)
    sample = m.take(in_flight=0, busy_slots=0, backlog=0)
    wait = Histogram.from_proto(sample.wait_time)
    assert sample.succeeded == 6 and Histogram.from_proto(sample.run_time).count == 6
    assert wait.count == 2 and wait.sum < 1.0  # now - 0.5, and 10 s ahead (a clock's drift): kept
    assert Histogram.from_proto(sample.end_to_end).count == 2
    assert sample.implausible_times == 3  # 1970, a month old, an hour ahead; 0 means unknown, not implausible
    assert m.take(in_flight=0, busy_slots=0, backlog=0).implausible_times == 0  # counted per interval
