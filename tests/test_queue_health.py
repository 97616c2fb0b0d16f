"""Unserved queues are visible, with a real coordinator and real nodes: a
queue no node that is up runs is warned about when added or applied, and
listed as unserved; a broker a node cannot reach shows as a broker error."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from support.brokers import REDIS_URL
from support.cluster import octoctl, octoctl_json, wait_until
from support.processes import Processes
from support.cluster import all_up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def states(target: str) -> dict[str, tuple[str, int]]:
    return {q["name"]: (q["state"], q["nodes"]) for q in octoctl_json(target, "queue", "list")}


def gauges(url: str, name: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {s.labels["queue"]: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


def test_unserved_paused_and_broken_queues_are_told_apart(procs: Processes, tmp_path: Path, key: str) -> None:
    """Before: a selector typo (dc=us-weast) or a broker no node could reach
    looked exactly like a healthy queue."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}", metrics=True)
    node = procs.node(coord.target, "a", ["dc=us-east"])
    wait_until(lambda: all_up(coord.target, 1), what="the node up")

    ok = octoctl(coord.target, "queue", "add", f"{key}-ok", "--backend", "redis", "--url", REDIS_URL,
                 "--selector", "dc=us-east")
    assert ok.stderr == ""
    typo = octoctl(coord.target, "queue", "add", f"{key}-typo", "--backend", "redis", "--url", REDIS_URL,
                   "--selector", "dc=us-weast")
    assert typo.returncode == 0 and typo.stderr.count("\n") == 1
    assert typo.stderr.startswith(f"warning: no node that is up runs queue {key}-typo")
    octoctl(coord.target, "queue", "add", f"{key}-paused", "--backend", "redis", "--url", REDIS_URL, "--paused")
    octoctl(coord.target, "queue", "add", f"{key}-broken", "--backend", "redis",
            "--url", f"redis://127.0.0.1:{free_port()}/0")

    wait_until(lambda: states(coord.target)[f"{key}-broken"][0] == "broker error", timeout=30,
               what="the node to report the broker it cannot reach")
    assert states(coord.target) == {f"{key}-ok": ("serving", 1), f"{key}-typo": ("unserved", 0),
                                    f"{key}-paused": ("paused", 1), f"{key}-broken": ("broker error", 1)}
    table = octoctl(coord.target, "queue", "list").stdout
    assert "NODES" in table.splitlines()[0] and "STATE" in table.splitlines()[0] and "unserved" in table
    shown = octoctl_json(coord.target, "queue", "show", f"{key}-broken")
    assert shown["state"] == "broker error" and "unreachable" in shown["broker_error"].lower()
    assert gauges(coord.metrics_url, "octobot_queue_unserved") == {
        f"{key}-ok": 0, f"{key}-typo": 1, f"{key}-paused": 0, f"{key}-broken": 0}
    assert gauges(coord.metrics_url, "octobot_queue_broker_errors")[f"{key}-broken"] == 1

    # Fixing the selector is a set that no longer warns; apply warns like add.
    fixed = octoctl(coord.target, "queue", "set", f"{key}-typo", "--selector", "dc=us-east")
    assert fixed.stderr == "" and states(coord.target)[f"{key}-typo"] == ("serving", 1)
    applied = octoctl(coord.target, "apply", "-f", "-", input=f"queues:\n- name: {key}-later\n  backend: redis\n"
                                                               f"  url: {REDIS_URL}\n  selector: dc=eu-west\n")
    assert applied.returncode == 0 and f"no node that is up runs queue {key}-later" in applied.stderr

    # A drained last node leaves its queues unserved.
    octoctl(coord.target, "node", "drain", node.node_id)
    assert states(coord.target)[f"{key}-ok"] == ("unserved", 0)
