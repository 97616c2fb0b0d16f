"""Live control of a running fleet from octoctl, with real processes on real
Redis: move a queue between datacenters and resize it while it is under load."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis

from brokers import REDIS_URL
from cluster import Coordinator, Node, octoctl, octoctl_json, wait_until
from conftest import Processes
from test_e2e import all_up, node_info, queue_status, write_envelopes


def queues_on(target: str, node_id: str) -> list[str]:
    """The queues a node's last heartbeat says it runs."""
    return sorted(q["queue"] for q in node_info(target, node_id).get("queues", []))


def start(procs: Processes, tmp_path: Path, *labels: str) -> tuple[Coordinator, list[Node]]:
    """A coordinator on SQLite and one node per label (named a, b, ...), all up."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    nodes = [procs.node(coord.target, name, [label]) for name, label in zip("abcdef", labels)]
    wait_until(lambda: all_up(coord.target, len(nodes)), what="nodes up")
    return coord, nodes


def add_queue(target: str, name: str, *flags: str) -> None:
    octoctl(target, "queue", "add", name, "--backend", "redis", "--url", REDIS_URL, *flags)


def test_selector_moves_a_queue_between_dcs_under_load(procs: Processes, tmp_path: Path, key: str,
                                                       redis_client: redis.Redis) -> None:
    coord, (a, b) = start(procs, tmp_path, "dc=a", "dc=b")
    concurrency, total = 8, 2000
    add_queue(coord.target, key, "--selector", "dc=a", "--concurrency", str(concurrency))
    octoctl(coord.target, "enqueue", key, "-f", str(write_envelopes(tmp_path / "a.jsonl", key, range(total), 0.01)))
    wait_until(lambda: redis_client.hlen(f"{key}:runs") >= 300, what="node a to get going")

    octoctl(coord.target, "queue", "set", key, "--selector", "dc=b")
    wait_until(lambda: queue_status(coord.target, a.node_id, key) is None, what="node a to stop the queue")
    time.sleep(1.0)  # its last tasks (10 ms each) finish in the background
    ran_on_a = {i for i, n in redis_client.hgetall(f"{key}:node").items() if n == b"a"}
    assert queue_status(coord.target, b.node_id, key) is not None
    assert redis_client.hlen(f"{key}:runs") < total, "the move happened mid-run"

    wait_until(lambda: redis_client.hlen(f"{key}:runs") == total, timeout=120, what="every task to run")
    runs = {int(i): int(n) for i, n in redis_client.hgetall(f"{key}:runs").items()}
    assert set(runs) == set(range(total)), "nothing lost"
    duplicates = sum(n - 1 for n in runs.values())
    assert duplicates <= 2 * concurrency, f"{duplicates} duplicates"
    nodes = redis_client.hgetall(f"{key}:node")
    assert {i for i, n in nodes.items() if n == b"a"} <= ran_on_a, "node a ran nothing after it stopped"
    assert sum(n == b"b" for n in nodes.values()) >= total - len(ran_on_a)
    assert [n["node"] for n in octoctl_json(coord.target, "queue", "show", key)["nodes"]] == [b.node_id]


def test_live_resize_under_load_loses_and_repeats_nothing(procs: Processes, tmp_path: Path, key: str,
                                                          redis_client: redis.Redis) -> None:
    coord, (node,) = start(procs, tmp_path, "dc=x")
    total = 3000
    add_queue(coord.target, key, "--concurrency", "4")
    octoctl(coord.target, "enqueue", key, "-f", str(write_envelopes(tmp_path / "a.jsonl", key, range(total), 0.02)))
    wait_until(lambda: redis_client.hlen(f"{key}:runs") >= 200, what="work to start")
    pid = node.proc.pid

    def running() -> int:
        return int(redis_client.get(f"{key}:running") or 0)

    octoctl(coord.target, "queue", "set", key, "--concurrency", "16")
    wait_until(lambda: running() > 4, interval=0.02, what="more than 4 tasks at once")
    octoctl(coord.target, "queue", "set", key, "--concurrency", "2")
    wait_until(lambda: (queue_status(coord.target, node.node_id, key) or {}).get("workers") == 2,
               what="surplus workers to leave after their tasks")
    assert redis_client.hlen(f"{key}:runs") < total - 100, "the shrink happened under load"
    samples = []
    for _ in range(50):
        samples.append(running())
        time.sleep(0.02)
    assert max(samples) <= 2, samples

    wait_until(lambda: redis_client.hlen(f"{key}:runs") == total, timeout=120, what="every task to run")
    runs = redis_client.hgetall(f"{key}:runs")
    assert set(runs.values()) == {b"1"}, "no task lost or run twice"
    assert node.alive() and node.proc.pid == pid
    details = [json.loads(e["detail"]) for e in octoctl_json(coord.target, "history") if e["action"] == "queue.update"]
    assert [d["after"]["concurrency"] for d in details] == [2, 16]
