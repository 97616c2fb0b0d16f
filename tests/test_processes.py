"""`--processes N`: one node, N worker processes sharing each queue's
concurrency, their stats merged, supervised: a worker killed mid-run is
restarted and its unacked work is redelivered."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import redis

from support.brokers import REDIS_URL
from support.cluster import octoctl, octoctl_json, wait_until
from support.processes import Processes
from octobot.backends import open_backend


def test_processes_share_a_queue_and_survive_a_crash(procs: Processes, tmp_path: Path, key: str,
                                                     redis_client: redis.Redis) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    node = procs.node(coord.target, "a", [], extra=("--processes", "2"))
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL, "--concurrency", "5",
            "--option", "visibility_timeout=2")
    node_id = node.node_id
    status = wait_until(lambda: next((q for q in octoctl_json(coord.target, "node", "show", node_id).get("queues", [])
                                      if q["queue"] == key and q["workers"] == 5), None), what="5 workers in all")
    assert status["connected"]
    assert len(octoctl_json(coord.target, "node", "list")) == 1, "the pool registers as one node"
    producer = open_backend("redis", key, REDIS_URL)

    def publish(items: range) -> None:
        producer.publish([json.dumps({"task": "e2e.record", "args": [key, i, 0.03]}).encode() for i in items])

    def task_pids() -> set[int]:
        return {int(p) for p in redis_client.smembers(f"{key}:pids")}

    def succeeded() -> int:
        rows = octoctl_json(coord.target, "stats", "--queue", key)["rows"]
        return int(rows[0].get("succeeded", 0)) if rows else 0

    # Both processes work, and their stats arrive merged under the one node.
    publish(range(200))
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 200, what="the first 200 tasks")
    workers = task_pids()
    assert len(workers) == 2 and node.proc.pid not in workers
    wait_until(lambda: succeeded() == 200, what="stats of both processes, merged")

    # A worker dies mid-run: it is replaced and nothing is lost.
    publish(range(200, 800))
    wait_until(lambda: redis_client.hlen(f"{key}:runs") >= 300, what="work to go on")
    os.kill(min(workers), signal.SIGKILL)
    wait_until(lambda: len(task_pids() - workers) == 1, timeout=30, what="a replacement worker to run tasks")
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 800, timeout=60, what="every task, after the crash")
    runs = [int(n) for n in redis_client.hvals(f"{key}:runs")]
    assert sum(runs) - 800 <= 2 * 5, "duplicates bounded by what the dead worker held"
    assert "died (exit code -9); restarting it" in node.output()
    assert node.alive()
    producer.close()
