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
from support.brokers import REDIS_URL, free_port
from support.cluster import TESTS, Node, octoctl, octoctl_json, wait_until
from support.processes import Processes
from octobot.node import config as node_config


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
    # The coordinator's metric names: one dashboard serves both.
    metrics = {(s.name, s.labels.get("queue"), s.labels.get("outcome", s.labels.get("le"))): s.value
               for family in text_string_to_metric_families(get(port, "/metrics")) for s in family.samples}
    assert metrics[("octobot_tasks_total", key, "succeeded")] == 100
    assert metrics[("octobot_tasks_total", f"{key}-local", "dead_lettered")] == 1
    assert metrics[("octobot_task_run_seconds_count", key, None)] == 100
    assert metrics[("octobot_task_run_seconds_bucket", key, "+Inf")] == 100
    assert metrics[("octobot_backlog", key, None)] >= -1 and ("octobot_in_flight", key, None) in metrics

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
    ("queues:\n  - {name: q, protocol: Redis, host: 127.0.0.1}\nmax_workers: 0\n", "octobot.yml: max_workers: must be a positive integer"),
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
    result = octoctl(coord.target, "queue", "add", "q", "--backend", "redis", "--url", REDIS_URL,
                     "--selector", "dc in (a b", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: bad selector term 'dc in (a b' in 'dc in (a b'"


ORIGINAL_STYLE = """\
Octobot:
  queues:
    - { name: burritos,
        protocol: AMQP,
        host: localhost,
        port: 5672,
        vhost: /,
        priority: 5,
        workers: 1,
        username: salsa,
        password: verde,
        heartbeat: 2,
        arguments: {
          x-max-length: 1000
        }
      }

  metrics_port: 1229

  email_enabled: true
  email_from: node@example.com
  email_to: oncall@example.com
  email_hostname: worker-1.example.com
  email_server: smtp.example.com
  email_port: 465
  email_ssl: true
  email_auth: true
  email_username: mailer
  email_password: s3cret

  # startup_hook: org.example.StartupHook
  # shutdown_hook: org.example.ShutdownHook
"""


def test_a_config_in_the_original_octobots_format_loads_with_every_key(tmp_path: Path) -> None:
    """Before: `heartbeat`, `arguments` and the email keys were unknown keys."""
    path = tmp_path / "example-config.yml"
    path.write_text(ORIGINAL_STYLE)
    config = node_config.load(path)
    [q] = config.queues
    assert (q.name, q.backend, q.priority, q.concurrency) == ("burritos", "amqp", 5, 1)
    assert q.url == "amqp://salsa:verde@localhost:5672/%2F?heartbeat=2"
    assert dict(q.options) == {"x-max-length": "1000"} and config.metrics_listen == "127.0.0.1:1229"
    mail = config.mail
    assert mail is not None and (mail.server, mail.port, mail.ssl, mail.username, mail.password, mail.hostname) == (
        "smtp.example.com", 465, True, "mailer", "s3cret", "worker-1.example.com")
    assert "s3cret" not in repr(mail)
    path.write_text(ORIGINAL_STYLE.replace("email_enabled: true", "email_enabled: false"))
    assert node_config.load(path).mail is None
    path.write_text(ORIGINAL_STYLE.replace("email_port: 465", "email_port: many"))
    with pytest.raises(node_config.ConfigError, match="email_port: must be int"):
        node_config.load(path)


def test_dead_letters_are_mailed(procs: Processes, tmp_path: Path, key: str) -> None:
    """The original Octobot mailed failures; a standalone node with its email keys does too."""
    from aiosmtpd.controller import Controller

    got: list[bytes] = []

    class Inbox:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            got.append(envelope.content)  # type: ignore[attr-defined]
            return "250 OK"

    smtp = Controller(Inbox(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        queues = tmp_path / "queues.db"
        config = tmp_path / "octobot.yml"
        config.write_text(f"queues:\n  - {{name: {key}, protocol: SQLite, path: {queues}, max_retries: 0}}\n"
                          f"email_enabled: true\nemail_to: [oncall@example.com]\nemail_server: 127.0.0.1\n"
                          f"email_port: {smtp.port}\n")
        procs.started.append(Node(None, tmp_path, "solo", [], extra=("--config", str(config))))
        with octobot.Client(f"sqlite:///{queues}") as client:
            client.enqueue(key, "e2e.fail", [key])
            client.enqueue(key, "e2e.no_such_task")
        wait_until(lambda: len(got) == 2, timeout=30, what="two mails")
        text = b"\n".join(got).decode()
        assert "To: oncall@example.com" in text and f"dead-lettered on {key}" in text
        assert "e2e.fail" in text and "dead-lettered unread: unknown task 'e2e.no_such_task'" in text
    finally:
        smtp.stop()
