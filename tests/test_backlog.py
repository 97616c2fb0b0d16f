"""The coordinator measures each queue's backlog itself, with a real
coordinator and real brokers: known with no node serving the queue and right
after a restart, never -1."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

import octobot
from support.brokers import REDIS_URL
from support.cluster import octoctl_json, octoctl, wait_until
from support.processes import Processes


def backlog_rows(target: str) -> dict[str, int]:
    return {r["queue"]: int(r["backlog"]) for r in octoctl_json(target, "stats")["rows"]}


def test_backlog_is_measured_without_nodes_and_after_a_restart(procs: Processes, tmp_path: Path, key: str) -> None:
    """Before: with no node serving the queue, backlog showed -1 (or a stale
    value) while the broker held 185 jobs."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}", metrics=True)
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL)
    with octobot.Client(REDIS_URL) as client:
        client.enqueue_many(key, [octobot.Envelope.new("t.task", [i]) for i in range(185)])
    wait_until(lambda: backlog_rows(coord.target).get(key) == 185, timeout=20, what="the backlog measured")
    total = octoctl_json(coord.target, "stats")["totals"][0]
    assert int(total["backlog"]) == 185

    coord.terminate()
    coord = procs.restart(coord)
    wait_until(lambda: backlog_rows(coord.target).get(key) == 185, timeout=20, what="the backlog after a restart")
    text = urllib.request.urlopen(coord.metrics_url, timeout=10).read().decode()
    gauges = {s.labels["queue"]: s.value for family in text_string_to_metric_families(text)
              for s in family.samples if s.name == "octobot_backlog"}
    assert gauges == {key: 185}
