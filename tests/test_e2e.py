"""End to end: a real coordinator, real nodes and octoctl, on real Redis, with
the store on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import redis

import octobot
from support.cluster import all_up, node_info, octoctl, octoctl_json, queue_status, wait_until, write_envelopes
from support.brokers import REDIS_URL
from support.processes import Processes


def test_selector_resize_and_remove(procs: Processes, store_url: str, key: str, redis_client: redis.Redis,
                                    tmp_path: Path) -> None:
    coord = procs.coordinator(store_url)
    east = procs.node(coord.target, "east", ["dc=us-east"])
    procs.node(coord.target, "west", ["dc=eu-west"])
    wait_until(lambda: all_up(coord.target, 2), what="both nodes up")

    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL,
            "--selector", "dc=us-east", "--concurrency", "4", "--priority", "8")
    out = octoctl(coord.target, "enqueue", key, "-f", str(write_envelopes(tmp_path / "a.jsonl", key, range(1000))))
    assert "enqueued 1000" in out.stdout

    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 1000, timeout=60, what="1000 tasks to run")
    runs = redis_client.hgetall(f"{key}:runs")
    assert {v for v in runs.values()} == {b"1"}, "every task ran exactly once"
    assert set(redis_client.hvals(f"{key}:node")) == {b"east"}, "only the selected dc ran the queue"
    assert int(redis_client.get(f"{key}:max_running")) <= 4

    # Resize live: the same process now runs 7 at a time.
    pid = east.proc.pid
    octoctl(coord.target, "queue", "set", key, "--concurrency", "7")
    wait_until(lambda: (queue_status(coord.target, east.node_id, key) or {}).get("workers") == 7,
               what="node to resize to 7 workers")
    slow = f"{key}-slow"
    octoctl(coord.target, "enqueue", key, "-f", str(write_envelopes(tmp_path / "b.jsonl", slow, range(28), 0.3)))
    wait_until(lambda: redis_client.hlen(f"{slow}:runs") == 28, timeout=30, what="slow tasks to run")
    assert int(redis_client.get(f"{slow}:max_running")) == 7
    assert east.alive() and east.proc.pid == pid

    shown = octoctl_json(coord.target, "queue", "show", key)
    assert [n["node"] for n in shown["nodes"]] == [east.node_id]

    # Removed: the node stops consuming; new messages stay in the broker.
    octoctl(coord.target, "queue", "rm", key, "--yes")
    wait_until(lambda: queue_status(coord.target, east.node_id, key) is None, what="queue to stop on the node")
    with octobot.Client(REDIS_URL) as client:
        client.enqueue_many(key, [octobot.Envelope.new("e2e.record", [f"{key}-after", i]) for i in range(10)])
        wait_until(lambda: client.depth(key) == 10, what="messages to wait in the broker")
    assert redis_client.hlen(f"{key}-after:runs") == 0
    assert octoctl(coord.target, "queue", "show", key, check=False).returncode == 1
    actions = [e["action"] for e in octoctl_json(coord.target, "history")]
    assert actions[:3] == ["queue.delete", "queue.update", "queue.create"]


def test_coordinator_restart_mid_run(procs: Processes, tmp_path: Path, key: str, redis_client: redis.Redis) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    node = procs.node(coord.target, "a", ["dc=us-east"])
    wait_until(lambda: all_up(coord.target, 1), what="node up")
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL, "--concurrency", "4")
    octoctl(coord.target, "enqueue", key, "-f", str(write_envelopes(tmp_path / "a.jsonl", key, range(400), 0.02)))
    wait_until(lambda: redis_client.hlen(f"{key}:runs") >= 50, what="work to start")

    coord.kill()
    done_at_kill = redis_client.hlen(f"{key}:runs")
    wait_until(lambda: redis_client.hlen(f"{key}:runs") > done_at_kill + 50, what="progress without a coordinator")

    # A node restarted while the coordinator is away resumes from its cached assignment.
    node.terminate()
    node = procs.node(coord.target, "a", ["dc=us-east"])
    with octobot.Client(REDIS_URL) as client:
        client.enqueue_many(key, [octobot.Envelope.new("e2e.record", [key, i]) for i in range(400, 500)])
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 500, timeout=60, what="all work done offline")

    coord = procs.restart(coord)
    assert [q["name"] for q in octoctl_json(coord.target, "queue", "list")] == [key]
    wait_until(lambda: all_up(coord.target, 1), what="node to re-register")
    assert octoctl_json(coord.target, "node", "list")[0]["node_id"] == node.node_id
    assert set(redis_client.hvals(f"{key}:runs")) == {b"1"}


def test_liveness_and_drain(procs: Processes, tmp_path: Path, key: str, redis_client: redis.Redis) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    node = procs.node(coord.target, "a", ["dc=us-east"])
    wait_until(lambda: all_up(coord.target, 1), what="node up")
    node_id = node.node_id

    # A frozen node keeps its stream open but stops heartbeating: suspect, then down.
    node.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: node_info(coord.target, node_id)["state"] == "NODE_STATE_SUSPECT", what="suspect")
        wait_until(lambda: node_info(coord.target, node_id)["state"] == "NODE_STATE_DOWN", what="down")
    finally:
        node.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: node_info(coord.target, node_id)["state"] == "NODE_STATE_UP", what="up again")

    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL, "--concurrency", "2")
    octoctl(coord.target, "enqueue", key, "-f", str(write_envelopes(tmp_path / "a.jsonl", key, range(4), 1.0)))
    wait_until(lambda: int(redis_client.get(f"{key}:running") or 0) == 2, what="two tasks running")
    octoctl(coord.target, "node", "drain", node_id)
    info = wait_until(lambda: (i := node_info(coord.target, node_id))["drained"] and i, timeout=15, what="drained")
    assert info["draining"] and info.get("queues", []) == []
    # Tasks that were running finished; the rest stayed in the broker for other nodes.
    assert redis_client.hlen(f"{key}:runs") == 2
    with octobot.Client(REDIS_URL) as client:
        assert client.depth(key) == 2


def test_pause_and_resume_on_the_sqlite_backend(procs: Processes, tmp_path: Path, key: str,
                                                redis_client: redis.Redis) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    node = procs.node(coord.target, "a", [])
    wait_until(lambda: all_up(coord.target, 1), what="node up")
    queue_url = f"sqlite:///{tmp_path / 'queues.db'}"
    octoctl(coord.target, "queue", "add", key, "--backend", "sqlite", "--url", queue_url, "--paused")
    octoctl(coord.target, "enqueue", key, "-f", str(write_envelopes(tmp_path / "a.jsonl", key, range(50))))
    wait_until(lambda: (queue_status(coord.target, node.node_id, key) or {}).get("paused"), what="paused queue")
    with octobot.Client(queue_url) as client:
        assert client.depth(key) == 50
        assert redis_client.hlen(f"{key}:runs") == 0, "a paused queue is not fetched"
        octoctl(coord.target, "queue", "resume", key)
        wait_until(lambda: redis_client.hlen(f"{key}:runs") == 50, what="work after resume")
        assert client.depth(key) == 0
    octoctl(coord.target, "queue", "pause", key)
    wait_until(lambda: (queue_status(coord.target, node.node_id, key) or {}).get("paused"), what="paused again")
    octoctl(coord.target, "enqueue", key, "e2e.record", "--args", json.dumps([key, 99]))
    time.sleep(1.5)
    assert redis_client.hlen(f"{key}:runs") == 50
