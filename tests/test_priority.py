"""Priorities buy slots: under a node's slot budget, saturated queues complete
work in proportion to their priority, and none starves. Three nodes run the
three scenarios side by side, each on its own pair of Redis queues."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

from support.brokers import REDIS_URL
from support.cluster import octoctl, wait_until
from support.processes import Processes
from octobot.backends import open_backend

SCENARIOS = {"a": (8, 2), "b": (5, 5), "c": (1, 10)}
WINDOW = 10.0
TASK = 0.02


def test_completions_follow_priority(procs: Processes, tmp_path: Path, key: str, redis_client: redis.Redis) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    queues: list[str] = []
    for scenario, priorities in SCENARIOS.items():
        procs.node(coord.target, scenario, [f"scenario={scenario}"], extra=("--max-workers", "10"))
        for n, priority in enumerate(priorities):
            queue = f"{key}-{scenario}{n}"
            queues.append(queue)
            octoctl(coord.target, "queue", "add", queue, "--backend", "redis", "--url", REDIS_URL, "--paused",
                    "--priority", str(priority), "--concurrency", "10", "--selector", f"scenario={scenario}")
            producer = open_backend("redis", queue, REDIS_URL)
            # More work than all 10 slots could finish in the window: both queues stay saturated.
            body = json.dumps({"task": "e2e.tick", "args": [f"{queue}:done", TASK]}).encode()
            producer.publish([body] * int(1.5 * 10 / TASK * WINDOW))
            producer.close()
    try:
        for queue in queues:
            octoctl(coord.target, "queue", "resume", queue)
        wait_until(lambda: all(redis_client.get(f"{q}:done") for q in queues), what="every queue to start")
        time.sleep(1.0)  # let the shares settle
        before = {q: int(redis_client.get(f"{q}:done")) for q in queues}
        time.sleep(WINDOW)
        done = {q: int(redis_client.get(f"{q}:done")) - before[q] for q in queues}
    finally:
        for queue in queues:
            octoctl(coord.target, "queue", "rm", queue, "--yes")

    a0, a1, b0, b1, c0, c1 = (done[q] for q in queues)
    assert 4 * 0.85 <= a0 / a1 <= 4 * 1.15, f"priority 8 vs 2 gave {a0}:{a1}"
    assert 0.9 <= b0 / b1 <= 1.1, f"priority 5 vs 5 gave {b0}:{b1}"
    assert c0 > 0 and c1 > c0, f"priority 1 vs 10 gave {c0}:{c1}: the low one must still run"
    # The budget is used, not wasted: 10 slots of 20 ms tasks finish about 500 a second.
    assert a0 + a1 > 0.6 * 10 / TASK * WINDOW
