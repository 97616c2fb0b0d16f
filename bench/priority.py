"""Achieved slot shares under contention: two saturated queues on one node.

    python bench/priority.py --priorities 8 2 --max-workers 10 --task-ms 20 --seconds 10

Starts a coordinator and one node with --max-workers, fills two Redis queues
with more fixed-time tasks than the window can finish, runs them for the
window and prints each queue's completions, its share of them, and the ratio
against the ratio of the priorities.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.brokers import REDIS_URL, cleanup  # noqa: E402
from support.cluster import Coordinator, Node, octoctl, wait_until  # noqa: E402

from octobot.backends import open_backend  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--priorities", type=int, nargs=2, default=[8, 2])
    parser.add_argument("--max-workers", type=int, default=10)
    parser.add_argument("--task-ms", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    opts = parser.parse_args()
    task = opts.task_ms / 1000
    r = redis.Redis.from_url(REDIS_URL)
    key = f"prio-{uuid.uuid4().hex[:6]}"
    queues = [f"{key}-{i}" for i in range(2)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        coord = Coordinator(f"sqlite:///{work / 'octobot.db'}", work)
        node = Node(coord.target, work, "n", [], extra=("--max-workers", str(opts.max_workers)))
        try:
            for queue, priority in zip(queues, opts.priorities):
                octoctl(coord.target, "queue", "add", queue, "--backend", "redis", "--url", REDIS_URL, "--paused",
                        "--priority", str(priority), "--concurrency", str(opts.max_workers))
                body = json.dumps({"task": "e2e.tick", "args": [f"{queue}:done", task]}).encode()
                producer = open_backend("redis", queue, REDIS_URL)
                producer.publish([body] * int(1.5 * opts.max_workers / task * opts.seconds))
                producer.close()
            for queue in queues:
                octoctl(coord.target, "queue", "resume", queue)
            wait_until(lambda: all(r.get(f"{q}:done") for q in queues))
            time.sleep(1.0)
            before = [int(r.get(f"{q}:done")) for q in queues]
            time.sleep(opts.seconds)
            done = [int(r.get(f"{q}:done")) - b for q, b in zip(queues, before)]
        finally:
            for queue in queues:
                octoctl(coord.target, "queue", "rm", queue, "--yes", check=False)
            node.terminate()
            coord.terminate()
            for queue in queues:
                cleanup("redis", REDIS_URL, queue)
                r.delete(f"{queue}:done")
    total = sum(done)
    for queue, priority, n in zip(queues, opts.priorities, done):
        print(f"priority {priority:2d}: {n:6d} tasks in {opts.seconds:.0f}s, {n / total:6.1%} of completions")
    want = opts.priorities[0] / opts.priorities[1]
    got = done[0] / done[1] if done[1] else float("inf")
    print(f"ratio {got:.2f} (priorities {want:.2f}); slots used {total * task / opts.seconds:.1f} of {opts.max_workers}")


if __name__ == "__main__":
    main()
