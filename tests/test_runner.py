"""The runner's thread economy does not cost latency: short tasks may run on
one thread, but a message never waits behind a slow task while a worker
sits idle (a real node on a real broker)."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from support.brokers import REDIS_URL
from support.cluster import octoctl, wait_until
from support.processes import Processes


def test_quick_tasks_do_not_wait_behind_a_slow_one(procs: Processes, tmp_path: Path, key: str,
                                                   redis_client: redis.Redis) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    procs.node(coord.target, "a", [])
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL, "--concurrency", "4",
            "--paused")
    slow, quick = f"{key}-slow", f"{key}-quick"
    lines = [{"task": "e2e.record", "args": [slow, 0, 5.0]},
             *({"task": "e2e.record", "args": [quick, i]} for i in range(40))]
    path = tmp_path / "work.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    octoctl(coord.target, "enqueue", key, "-f", str(path))
    # Resumed with all of it waiting, one fetch brings the slow task first and the quick ones behind it.
    octoctl(coord.target, "queue", "resume", key)
    wait_until(lambda: redis_client.hlen(f"{quick}:runs") == 40, timeout=30, what="the quick tasks to run")
    assert redis_client.get(f"{slow}:running") == b"1", "the quick tasks ran while the slow one was still running"
    wait_until(lambda: redis_client.hlen(f"{slow}:runs") == 1, timeout=30, what="the slow task to finish")
