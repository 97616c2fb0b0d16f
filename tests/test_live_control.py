"""Live control of a running fleet from octoctl, with real processes on real
Redis: cordon, uncordon and forget nodes; apply a declared set of queues;
move a queue between datacenters and resize it while it is under load."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import grpc
import pytest
import redis

from support.brokers import REDIS_URL
from support.cluster import Coordinator, Node, octoctl, octoctl_json, wait_until
from support.processes import Processes
from octobot import rpc
from octobot.v1 import admin_pb2, admin_pb2_grpc
from support.cluster import all_up, node_info, queue_status, write_envelopes


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


def test_cordon_keeps_existing_queues_and_refuses_new_ones(procs: Processes, tmp_path: Path, key: str,
                                                           redis_client: redis.Redis) -> None:
    coord, (a, b) = start(procs, tmp_path, "dc=x", "dc=x")
    before, after = f"{key}-before", f"{key}-after"
    add_queue(coord.target, before, "--concurrency", "2")
    wait_until(lambda: queues_on(coord.target, a.node_id) == [before], what="node a to run the first queue")

    out = octoctl(coord.target, "node", "cordon", a.node_id)
    assert out.stdout.strip() == f"node {a.node_id} cordoned; it keeps {before}"
    add_queue(coord.target, after)
    wait_until(lambda: queues_on(coord.target, b.node_id) == sorted([before, after]), what="node b to run both")
    # The queue it had still gets updates; the new one never reaches it.
    octoctl(coord.target, "queue", "set", before, "--concurrency", "5")
    wait_until(lambda: (queue_status(coord.target, a.node_id, before) or {}).get("workers") == 5,
               what="the cordoned node to resize its queue")
    assert queues_on(coord.target, a.node_id) == [before]
    octoctl(coord.target, "enqueue", after, "-f", str(write_envelopes(tmp_path / "a.jsonl", after, range(40))))
    wait_until(lambda: redis_client.hlen(f"{after}:runs") == 40, what="the new queue's work")
    assert set(redis_client.hvals(f"{after}:node")) == {b"b"}
    shown = octoctl_json(coord.target, "queue", "show", after)
    assert [n["node"] for n in shown["nodes"]] == [b.node_id]

    info = node_info(coord.target, a.node_id)
    assert info["cordoned"] is True and info["cordoned_queues"] == [before]
    listed = octoctl(coord.target, "node", "list").stdout
    assert "up (cordoned)" in next(line for line in listed.splitlines() if a.node_id in line)

    # The cordon is in the store: a restarted coordinator keeps it.
    coord.terminate()
    coord = procs.restart(coord)
    wait_until(lambda: all_up(coord.target, 2), what="both nodes back")
    time.sleep(1.5)  # several heartbeats: a wrongly placed queue would have started by now
    assert queues_on(coord.target, a.node_id) == [before]

    octoctl(coord.target, "node", "uncordon", a.node_id)
    wait_until(lambda: queues_on(coord.target, a.node_id) == sorted([before, after]), what="placement restored")
    assert node_info(coord.target, a.node_id)["cordoned"] is False

    # Uncordon also ends a drain, as kubectl's does.
    octoctl(coord.target, "node", "drain", b.node_id)
    wait_until(lambda: node_info(coord.target, b.node_id)["drained"], what="node b drained")
    octoctl(coord.target, "node", "uncordon", b.node_id)
    wait_until(lambda: queues_on(coord.target, b.node_id) == sorted([before, after]), what="node b back at work")
    assert node_info(coord.target, b.node_id)["draining"] is False
    actions = [(e["action"], e["target"]) for e in octoctl_json(coord.target, "history")]
    assert actions[:4] == [("node.uncordon", b.node_id), ("node.drain", b.node_id),
                           ("node.uncordon", a.node_id), ("queue.update", before)]
    assert ("node.cordon", a.node_id) in actions


def test_forget_is_refused_while_the_node_is_up(procs: Processes, tmp_path: Path) -> None:
    coord, (node, keep) = start(procs, tmp_path, "dc=x", "dc=x")
    node_id = node.node_id

    refused = octoctl(coord.target, "node", "forget", node_id, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"error: node {node_id} is up: drain and stop it first"
    channel = rpc.make_channel(coord.target)
    try:
        with pytest.raises(grpc.RpcError) as info:
            admin_pb2_grpc.AdminServiceStub(channel).ForgetNode(admin_pb2.ForgetNodeRequest(node_id=node_id), timeout=10)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        channel.close()

    assert node.terminate() == 0
    wait_until(lambda: node_info(coord.target, node_id)["state"] == "NODE_STATE_DOWN", what="node down")
    assert octoctl(coord.target, "node", "forget", node_id).stdout.strip() == f"node {node_id} forgotten"
    assert [n["node_id"] for n in octoctl_json(coord.target, "node", "list")] == [keep.node_id]
    gone = octoctl(coord.target, "node", "forget", node_id, check=False)
    assert gone.returncode == 1 and "not found" in gone.stderr
    assert octoctl_json(coord.target, "history")[0]["action"] == "node.forget"

    # A forgotten node that comes back registers anew.
    procs.node(coord.target, "a", ["dc=x"])
    wait_until(lambda: all_up(coord.target, 2), what="the node to register again")


def test_apply_creates_updates_prunes_and_round_trips(procs: Processes, tmp_path: Path, key: str) -> None:
    coord, (node,) = start(procs, tmp_path, "dc=x")
    qa, qb, qc = f"{key}-a", f"{key}-b", f"{key}-c"
    file = tmp_path / "queues.yaml"
    file.write_text(f"""\
queues:
  - name: {qa}
    backend: redis
    url: {REDIS_URL}
    concurrency: 2
    selector: dc=x
  - name: {qb}
    protocol: Redis        # the original's keys work too
    host: 127.0.0.1
    workers: 3
    priority: 8
""")

    dry = octoctl(coord.target, "apply", "-f", str(file), "--dry-run").stdout.splitlines()
    assert dry == [f"+ create {qa}: redis {REDIS_URL}, concurrency 2, selector dc=x",
                   f"+ create {qb}: redis redis://127.0.0.1:6379/0, priority 8, concurrency 3",
                   "dry run, nothing changed: 2 to create, 0 to update, 0 to delete"]
    assert octoctl_json(coord.target, "queue", "list") == []

    applied = octoctl(coord.target, "apply", "-f", str(file)).stdout.splitlines()
    assert applied[:2] == dry[:2] and applied[2].startswith("applied: 2 created, 0 updated, 0 deleted (generation ")
    wait_until(lambda: queues_on(coord.target, node.node_id) == [qa, qb], what="the node to run both queues")
    history = octoctl_json(coord.target, "history")
    again = octoctl(coord.target, "apply", "-f", str(file))
    assert again.stdout == "no changes: the cluster already matches the 2 queues\n"
    assert octoctl_json(coord.target, "history") == history, "a second apply changes nothing"

    file.write_text(f"""\
queues:
  - name: {qa}
    backend: redis
    url: {REDIS_URL}
    concurrency: 6
    selector: dc=x
    options: {{visibility_timeout: 10}}
  - name: {qc}
    backend: redis
    url: {REDIS_URL}
""")
    out = octoctl(coord.target, "apply", "-f", str(file)).stdout.splitlines()
    assert out[:2] == [f"~ update {qa}: concurrency 2 -> 6, options {{}} -> {{visibility_timeout=10}}",
                       f"+ create {qc}: redis {REDIS_URL}"]
    wait_until(lambda: (queue_status(coord.target, node.node_id, qa) or {}).get("workers") == 6,
               what="the node to resize")
    assert [q["name"] for q in octoctl_json(coord.target, "queue", "list")] == [qa, qb, qc], "no prune: kept"

    pruning = octoctl(coord.target, "apply", "-f", str(file), "--prune", "--dry-run").stdout.splitlines()
    assert pruning == [f"- delete {qb}", "dry run, nothing changed: 0 to create, 0 to update, 1 to delete"]
    assert len(octoctl_json(coord.target, "queue", "list")) == 3
    pruned = octoctl(coord.target, "apply", "-f", str(file), "--prune").stdout.splitlines()
    assert pruned[0] == f"- delete {qb}"
    generation = int(pruned[1].rsplit(" ", 1)[1].rstrip(")"))
    wait_until(lambda: queues_on(coord.target, node.node_id) == [qa, qc], what="the node to stop the pruned queue")
    assert int(node_info(coord.target, node.node_id)["applied_generation"]) == generation

    # What `queue list -o yaml` writes, apply reads back unchanged (from stdin).
    listed = octoctl(coord.target, "queue", "list", "-o", "yaml").stdout
    assert listed.startswith(f"queues:\n- name: {qa}\n")
    check = octoctl(coord.target, "apply", "-f", "-", "--prune", "--dry-run", input=listed)
    assert check.stdout == "no changes: the cluster already matches the 2 queues\n"
    bad = octoctl(coord.target, "apply", "-f", "-", check=False, input=listed.replace("concurrency: 6", "concurrency: 0"))
    assert bad.returncode == 1
    assert bad.stderr.strip() == ("error: stdin: queues[0].concurrency: concurrency must be between 1 and 1000, "
                                  "got 0")


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


def test_a_departed_node_keeps_the_time_it_was_last_seen(procs: Processes, tmp_path: Path) -> None:
    """Connected nodes' last-seen times reach the store a few nodes at a time,
    so a node that leaves is written with the next round (every 5 s): the store
    then shows when it was last seen, not when it registered."""
    coord, (node,) = start(procs, tmp_path, "dc=x")
    time.sleep(3)  # heartbeats move its last-seen time past the registration
    assert node.terminate() == 0
    left = time.time()

    def stored() -> float:
        info = node_info(coord.target, node.node_id)
        return datetime.fromisoformat(info["last_seen"].replace("Z", "+00:00")).timestamp()

    seen = wait_until(lambda: (t := stored()) >= left - 2.0 and t, timeout=10, what="the departure written")
    assert seen <= left
