"""Standalone mode, as the original Octobot ran: queues from a YAML file, no
coordinator, stats on a local endpoint, startup and shutdown hooks."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

import octobot
from brokers import REDIS_URL, free_port
from cluster import TESTS, Node, octoctl, octoctl_json, wait_until
from conftest import Processes


def write_config(path: Path, key: str, metrics_port: int, sqlite_path: Path) -> Path:
    path.write_text(f"""\
Octobot:
  queues:
    - name: {key}
      protocol: Redis
      host: 127.0.0.1
      port: 6379
      priority: 8
      workers: 3
    - name: {key}-local
      protocol: SQLite
      path: {sqlite_path}
      workers: 2
      max_retries: 0
  max_workers: 4
  metrics_port: {metrics_port}
  startup_hook: e2e_tasks:on_start
  shutdown_hook: e2e_tasks:on_stop
""")
    return path


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read().decode()


def test_standalone_node_runs_its_yaml_queues(procs: Processes, tmp_path: Path, key: str,
                                              redis_client: redis.Redis) -> None:
    port = free_port()
    config = write_config(tmp_path / "octobot.yml", key, port, tmp_path / "queues.db")
    node = Node(None, tmp_path, "solo", [], env={"E2E_HOOK_KEY": key}, extra=("--config", str(config)))
    procs.started.append(node)
    wait_until(lambda: redis_client.get(f"{key}:started"), what="the startup hook")

    with octobot.Client(REDIS_URL) as client:
        client.enqueue_many(key, [octobot.Envelope.new("e2e.record", [key, i]) for i in range(100)])
    with octobot.Client(f"sqlite:///{tmp_path / 'queues.db'}") as client:
        client.enqueue_many(f"{key}-local", [octobot.Envelope.new("e2e.record", [f"{key}-local", i]) for i in range(30)])
        client.enqueue(f"{key}-local", "e2e.fail", args=[key])
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 100 and redis_client.hlen(f"{key}-local:runs") == 30,
               what="both queues' tasks to run")
    assert int(redis_client.get(f"{key}:max_running")) <= 3

    def document() -> dict:
        return json.loads(get(port, "/"))
    doc = wait_until(lambda: (d := document())["queues"].get(key, {}).get("succeeded") == 100 and
                     d["queues"][f"{key}-local"]["dead_lettered"] == 1 and d, what="the JSON stats")
    assert doc["queues"][f"{key}-local"]["succeeded"] == 30
    assert doc["queues"][key]["run_time"]["count"] == 100
    metrics = {(s.name, s.labels.get("queue")): s.value
               for family in text_string_to_metric_families(get(port, "/metrics")) for s in family.samples}
    assert metrics[("octobot_tasks_succeeded_total", key)] == 100
    assert metrics[("octobot_tasks_dead_lettered_total", f"{key}-local")] == 1

    assert node.terminate() == 0
    assert float(redis_client.get(f"{key}:stopped")) > float(redis_client.get(f"{key}:started"))

    # The same node, tasks unchanged, joins a coordinator later.
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    joined = procs.node(coord.target, "solo", ["dc=laptop"])
    wait_until(lambda: [n["node_id"] for n in octoctl_json(coord.target, "node", "list")] == [joined.node_id],
               what="the node to register")
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL)
    octoctl(coord.target, "enqueue", key, "e2e.record", "--args", json.dumps([key, 100]))
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 101, what="work through the coordinator")


@pytest.mark.parametrize("body, error", [
    ("queues:\n  - {name: q, protocol: Redis, priority: 11}\n", "octobot.yml: queues[0].priority: priority must be between 1 and 10, got 11"),
    ("queues:\n  - {name: q, protocol: Kafka}\n", "octobot.yml: queues[0].protocol: unknown backend 'kafka'"),
    ("queues:\n  - {name: q, protocol: Redis, colour: red}\n", "octobot.yml: queues[0].colour: unknown key"),
    ("queues:\n  - {name: q, protocol: Redis, workers: many}\n", "octobot.yml: queues[0].workers: 'many' is not a valid workers"),
    ("queues:\n  - {protocol: Redis}\n", "octobot.yml: queues[0].name: missing"),
    ("queues: [\n", "octobot.yml: not valid YAML at line 2"),
    ("queues: []\n", "octobot.yml: queues: a non-empty list is required"),
    ("queues:\n  - {name: q, protocol: Redis}\nmax_workers: 0\n", "octobot.yml: max_workers: must be a positive integer"),
])
def test_bad_config_is_one_line_naming_the_key(tmp_path: Path, body: str, error: str) -> None:
    config = tmp_path / "octobot.yml"
    config.write_text(body)
    result = subprocess.run([sys.executable, "-m", "octobot.node.main", "--config", str(config),
                             "--state-dir", str(tmp_path / "state")], capture_output=True, text=True, timeout=30, cwd=TESTS)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {error}"), result.stderr


def test_bad_selector_is_one_line(procs: Processes, tmp_path: Path) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    result = octoctl(coord.target, "queue", "add", "q", "--backend", "redis", "--selector", "dc in (a b", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: bad selector term 'dc in (a b' in 'dc in (a b'"
