"""Placement that knows tasks, with a real coordinator and real nodes: a
queue declaring its tasks runs only on nodes that have them, and in a rolling
deploy a node without a message's task hands it back to one that has it."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families

import octobot
from support.brokers import REDIS_URL
from support.cluster import octoctl, octoctl_json, wait_until
from support.processes import Processes
from support.cluster import all_up
from support.cluster import cached


def served(state_dir: Path, queue: str) -> list[str]:
    """The served tasks of a queue in the assignment a node applied last."""
    assignment = cached(state_dir)
    return next((list(q.served_tasks) for q in assignment.queues if q.name == queue), []) if assignment else []


def test_rolling_deploy_loses_no_message_to_a_node_without_the_task(
        procs: Processes, tmp_path: Path, key: str, redis_client: redis.Redis) -> None:
    """Before: a node started without a queue's task dead-lettered its messages
    as `unknown task` (145 of 400) while another node could run them."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}", metrics=True)
    old = procs.node(coord.target, "old", ["dc=us-east"], tasks="e2e_tasks_old")
    new = procs.node(coord.target, "new", ["dc=us-east"])
    wait_until(lambda: all_up(coord.target, 2), what="both nodes up")
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL, "--concurrency", "4")
    wait_until(lambda: "e2e.record" in served(old.state_dir, key), what="the old node to learn who runs e2e.record")

    with octobot.Client(REDIS_URL) as client:
        client.enqueue_many(key, [octobot.Envelope.new("e2e.record", [key, i]) for i in range(1000)])
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 1000, timeout=90, what="1,000 messages run")
    assert set(redis_client.hvals(f"{key}:runs")) == {b"1"}, "each message ran once"
    assert set(redis_client.hvals(f"{key}:node")) == {b"new"}
    assert octoctl_json(coord.target, "dead", "list", key) == []

    assert all(n["tasks"] == [] for n in octoctl_json(coord.target, "node", "list"))  # GetNode has them
    [status] = octoctl_json(coord.target, "node", "show", old.node_id)["queues"]
    assert int(status["handed_back"]) > 0 and status["missing_tasks"] == ["e2e.record"]
    placements = {p["node"]: p for p in octoctl_json(coord.target, "queue", "show", key)["nodes"]}
    assert placements[old.node_id]["missing_tasks"] == ["e2e.record"]
    assert placements[new.node_id]["handed_back"] == 0
    text = urllib.request.urlopen(coord.metrics_url, timeout=10).read().decode()
    handed = {s.labels["node"]: s.value for family in text_string_to_metric_families(text) for s in family.samples
              if s.name == "octobot_handed_back_messages_total"}
    assert list(handed) == [old.node_id] and handed[old.node_id] > 0

    # A task no node of the queue has is still dead-lettered at once.
    with octobot.Client(REDIS_URL) as client:
        client.enqueue(key, "e2e.nowhere")
    wait_until(lambda: len(octoctl_json(coord.target, "dead", "list", key)) == 1, what="the unknown task dead-lettered")


def test_a_queue_declaring_its_tasks_is_placed_only_on_nodes_that_have_them(
        procs: Processes, tmp_path: Path, key: str) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    old = procs.node(coord.target, "old", [], tasks="e2e_tasks_old")
    new = procs.node(coord.target, "new", [])
    wait_until(lambda: all_up(coord.target, 2), what="both nodes up")
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL, "--tasks", "e2e.record,e2e.*")
    assert octoctl_json(coord.target, "queue", "show", key)["tasks"] == ["e2e.record", "e2e.*"]
    assert [p["node"] for p in octoctl_json(coord.target, "queue", "show", key)["nodes"]] == [new.node_id]
    wait_until(lambda: [q["queue"] for q in octoctl_json(coord.target, "node", "show", new.node_id)["queues"]]
               == [key], what="the new node to run the queue")
    assert octoctl_json(coord.target, "node", "show", old.node_id).get("queues", []) == []

    # A node id may be given by a unique prefix.
    assert octoctl_json(coord.target, "node", "show", new.node_id[:-3])["node_id"] == new.node_id
    shared = os.path.commonprefix([old.node_id, new.node_id])
    ambiguous = octoctl(coord.target, "node", "cordon", shared, check=False)
    assert ambiguous.returncode == 1 and f"node id prefix {shared!r} is ambiguous" in ambiguous.stderr

    # Declared tasks round-trip through a queues file, and can be cleared.
    exported = octoctl(coord.target, "queue", "list", "-o", "yaml").stdout
    assert "- e2e.record" in exported
    assert "no changes" in octoctl(coord.target, "apply", "-f", "-", input=exported).stdout.lower()
    octoctl(coord.target, "queue", "set", key, "--tasks", "")
    wait_until(lambda: len(octoctl_json(coord.target, "queue", "show", key)["nodes"]) == 2,
               what="both nodes to run the queue")
    bad = octoctl(coord.target, "queue", "set", key, "--tasks", "a b", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "tasks must be" in bad.stderr
