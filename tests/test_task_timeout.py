"""task_timeout: a task running past it is interrupted in its worker thread,
fails like any other error (retried, then dead-lettered with the reason and
where it was stopped), and the worker goes on with the next message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

import octobot
from support.cluster import octoctl, octoctl_json, wait_until
from support.processes import Processes


def test_overdue_task_is_interrupted_retried_and_dead_lettered(procs: Processes, tmp_path: Path, key: str,
                                                                redis_client: redis.Redis) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    procs.node(coord.target, "a", [])
    url = f"sqlite:///{tmp_path / 'queues.db'}"
    octoctl(coord.target, "queue", "add", key, "--backend", "sqlite", "--url", url, "--concurrency", "2",
            "--task-timeout", "0.5", "--max-retries", "1", "--retry-backoff", "0.05")
    started = time.monotonic()
    with octobot.Client(url) as client:
        client.enqueue_many(key, [octobot.Envelope.new("e2e.spin", [key, 60]),
                                  octobot.Envelope.new("e2e.spin", [f"{key}-short", 0.1])])

    letters = wait_until(lambda: (d := octoctl_json(coord.target, "dead", "list", key)) and d,
                         timeout=30, what="the overdue task in the dead letters")
    # Two attempts of 0.5 s each, a retry backoff and the watch's slack: far from the task's 60 s.
    assert time.monotonic() - started < 15
    [letter] = letters
    assert letter["reason"] == ("failed after 2 attempt(s): TaskTimeout: "
                                "ran longer than the queue's task_timeout of 0.5 s")
    assert "in spin" in letter["error"]  # the traceback shows where the task was stopped
    assert json.loads(letter["body"])["attempt"] == 1
    assert int(redis_client.get(f"{key}:spinning")) == 2 and redis_client.get(f"{key}:spun") is None
    # A task within its limit is untouched.
    assert redis_client.get(f"{key}-short:spun") == b"1"

    # Both worker threads live on: two more tasks run side by side.
    with octobot.Client(url) as client:
        client.enqueue_many(key, [octobot.Envelope.new("e2e.record", [key, i, 0.3]) for i in range(2)])
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 2, what="the next tasks to run")
    assert int(redis_client.get(f"{key}:max_running")) == 2
