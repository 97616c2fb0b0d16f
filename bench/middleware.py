"""What task middleware costs a task: ``execute`` on the in-memory backend,
with none installed and with one and three no-op middleware.

    python bench/middleware.py

Prints the median of 7 runs of 100,000 no-op tasks each, in microseconds a
task; compare them with a node's CPU per task (bench/throughput.py prints
it, 22-26 us on the reference VM) for the share of throughput they cost.
"""

from __future__ import annotations

import statistics
import time

import octobot
from octobot import middleware
from octobot.backends import Delivery
from octobot.backends.memory import MemoryBackend
from octobot.envelope import Envelope
from octobot.node.execute import execute
from octobot.node.metrics import QueueMetrics
from octobot.node.timeouts import TaskGuard
from octobot.v1 import queue_pb2

N = 100_000


@octobot.task(name="bench.noop")
def noop(i: int) -> None: ...


def per_task() -> float:
    spec = queue_pb2.QueueSpec(name="q", max_retries=3, max_message_bytes=1 << 20)
    backend, metrics, guard = MemoryBackend("q", "memory://bench"), QueueMetrics("q"), TaskGuard()
    delivery = Delivery(Envelope.new("bench.noop", [1]).encode(), 0)  # acked by nobody: only execute is timed
    start = time.perf_counter()
    for _ in range(N):
        execute(delivery, spec, backend, metrics, guard)
    return (time.perf_counter() - start) / N * 1e6


def main() -> None:
    results: dict[int, list[float]] = {0: [], 1: [], 3: []}
    for _ in range(7):
        for count in results:
            added = [octobot.Middleware() for _ in range(count)]
            middleware.install(*added)
            try:
                results[count].append(per_task())
            finally:
                middleware.uninstall(*added)
    base = statistics.median(results[0])
    for count, runs in results.items():
        print(f"{count} middleware: {statistics.median(runs):.2f} us a task (+{statistics.median(runs) - base:.2f})")


if __name__ == "__main__":
    main()
