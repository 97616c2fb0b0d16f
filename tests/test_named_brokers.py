"""Named brokers with a URL per datacenter, and no silent localhost, against
a real coordinator, real nodes and Redis. Two Redis databases stand for two
datacenters' brokers: a node in each runs only what its own holds."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import redis

import octobot
from support.brokers import REDIS_URL, cleanup
from support.cluster import octoctl, octoctl_json, wait_until
from support.processes import Processes
from octobot.ctl.brokers import parse_urls

US, EU, EU_NEW = (REDIS_URL.rsplit("/", 1)[0] + f"/{db}" for db in (1, 2, 3))


def test_urls_split_into_a_default_and_selected_endpoints() -> None:
    url, endpoints = parse_urls(("redis://a:6379/0", "dc=eu-west=redis://b:6379/0?x=1",
                                 "dc in (x,y)=amqp://u:p@c/%2F"))
    assert url == "redis://a:6379/0"
    assert [(e.selector, e.url) for e in endpoints] == [("dc=eu-west", "redis://b:6379/0?x=1"),
                                                        ("dc in (x,y)", "amqp://u:p@c/%2F")]
    with pytest.raises(click.BadParameter, match="a default URL is required"):
        parse_urls(("dc=eu=redis://b",))
    with pytest.raises(click.BadParameter, match="one default URL only"):
        parse_urls(("redis://a", "redis://b"))


def test_a_queue_needs_a_url_or_a_broker(procs: Processes, tmp_path: Path, key: str) -> None:
    """Before: `queue add emails --backend redis` silently became redis://127.0.0.1:6379/0 on every node."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    for backend in ("redis", "amqp", "beanstalk"):
        refused = octoctl(coord.target, "queue", "add", key, "--backend", backend, check=False)
        assert refused.returncode == 1
        assert refused.stderr == "error: a queue needs a broker URL (--url) or a named broker (--broker)\n"
    refused = octoctl(coord.target, "apply", "-f", "-", check=False, input=f"queues:\n- name: {key}\n  backend: redis\n")
    assert refused.returncode == 1 and "queues[0].url: a queue needs a broker URL" in refused.stderr
    octoctl(coord.target, "queue", "add", key, "--backend", "sqlite")  # the embedded default stays
    assert octoctl_json(coord.target, "queue", "show", key)["url"].startswith("sqlite:///")


def _runs(key: str) -> dict[str, str]:
    """Which node ran each item (e2e.record)."""
    got = redis.Redis.from_url(REDIS_URL).hgetall(f"{key}:node")
    return {k.decode(): v.decode() for k, v in got.items()}


def test_each_datacenter_runs_the_queue_on_its_own_broker(procs: Processes, tmp_path: Path, key: str) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    try:
        octoctl(coord.target, "broker", "add", "main", "--backend", "redis", "--url", US, "--url", f"dc=eu-west={EU}")
        octoctl(coord.target, "queue", "add", key, "--broker", "main", "--concurrency", "2")
        assert octoctl_json(coord.target, "broker", "show", "main")["queues"] == [key]

        # Backlog is measured at each URL with no node running: 30 in the US, 20 in the EU.
        for url, first, count in ((US, 0, 30), (EU, 100, 20)):
            with octobot.Client(url) as client:
                for i in range(first, first + count):
                    client.enqueue(key, "e2e.record", args=[key, i])

        def measured() -> dict[str, object] | None:
            shown = octoctl_json(coord.target, "queue", "show", key)
            return shown if [e.get("backlog") for e in shown["endpoint_backlogs"]] == ["30", "20"] else None

        shown = wait_until(measured, timeout=20, what="the backlog at both URLs")
        assert [e["selector"] for e in shown["endpoint_backlogs"]] == ["", "dc=eu-west"]
        wait_until(lambda: {r["queue"]: r["backlog"] for r in octoctl_json(coord.target, "stats")["rows"]}
                   .get(key) in (50, "50"), timeout=20, what="the queue's backlog, summed over its URLs")

        procs.node(coord.target, "us", ["dc=us-east"])
        procs.node(coord.target, "eu", ["dc=eu-west"])
        wait_until(lambda: len(_runs(key)) == 50, timeout=60, what="all 50 messages run")
        runs = _runs(key)
        assert {runs[str(i)] for i in range(30)} == {"us"}
        assert {runs[str(i)] for i in range(100, 120)} == {"eu"}

        # A new URL for the EU reaches the EU node, which runs what is there.
        octoctl(coord.target, "broker", "set", "main", "--url", US, "--url", f"dc=eu-west={EU_NEW}")
        with octobot.Client(EU_NEW) as client:
            for i in range(200, 210):
                client.enqueue(key, "e2e.record", args=[key, i])
        wait_until(lambda: len(_runs(key)) == 60, timeout=60, what="the messages at the new EU URL run")
        assert {_runs(key)[str(i)] for i in range(200, 210)} == {"eu"}
        counts = redis.Redis.from_url(REDIS_URL).hgetall(f"{key}:runs")
        assert sorted(int(v) for v in counts.values()) == [1] * 60, "every message ran once"

        # The coordinator's own calls act on the endpoint named, else on the default URL.
        octoctl(coord.target, "enqueue", key, "e2e.record", "--args", f'["{key}", 300]', "--endpoint", "dc=eu-west")
        octoctl(coord.target, "enqueue", key, "no.such.task", "--endpoint", "dc=eu-west")
        wait_until(lambda: _runs(key).get("300") == "eu", timeout=30, what="the message enqueued at the EU endpoint")
        eu_dead = wait_until(lambda: octoctl_json(coord.target, "dead", "list", key, "--endpoint", "dc=eu-west"),
                             timeout=30, what="the EU dead letter")
        assert [d["reason"] for d in eu_dead] == ["unknown task 'no.such.task'"]
        assert octoctl_json(coord.target, "dead", "list", key) == []
        unknown = octoctl(coord.target, "dead", "list", key, "--endpoint", "dc=nowhere", check=False)
        assert unknown.returncode == 1
        assert unknown.stderr == (f"error: queue '{key}' has no endpoint 'dc=nowhere' (its endpoints: 'dc=eu-west')\n")
        assert octoctl(coord.target, "dead", "purge", key, "--endpoint", "dc=eu-west").stdout.startswith("purged 1 ")

        refused = octoctl(coord.target, "broker", "rm", "main", check=False)
        assert refused.returncode == 1 and f"used by 1 queue(s) ({key})" in refused.stderr
        octoctl(coord.target, "queue", "rm", key, "--yes")
        octoctl(coord.target, "broker", "rm", "main")
        assert octoctl_json(coord.target, "broker", "list") == []
    finally:
        for url in (US, EU, EU_NEW):
            cleanup("redis", url, key)


def test_broker_secrets_stay_in_the_coordinator(procs: Processes, tmp_path: Path, key: str) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    octoctl(coord.target, "broker", "add", "vault", "--backend", "amqp", "--url", "amqp://app:hunter2@mq.us:5672/%2F",
            "--url", "dc=eu=amqp://app:s3cr3t@mq.eu:5672/%2F")
    octoctl(coord.target, "queue", "add", key, "--broker", "vault")
    outputs = [octoctl(coord.target, *args).stdout for args in (
        ("broker", "list"), ("broker", "list", "-o", "json"), ("broker", "list", "-o", "yaml"),
        ("broker", "show", "vault"), ("queue", "show", key), ("queue", "show", key, "-o", "json"),
        ("queue", "list", "-o", "yaml"), ("history",))]
    for text in outputs:
        assert "hunter2" not in text and "s3cr3t" not in text
    assert "amqp://app:****@mq.eu:5672/%2F" in outputs[1]
    # A listing's redacted URLs given back keep the stored secrets; a new redacted one is refused.
    octoctl(coord.target, "broker", "set", "vault", "--url", "amqp://app:****@mq.us:5672/%2F",
            "--url", "dc=eu=amqp://app:****@mq.eu:5672/%2F", "--url", "dc=ap=amqp://app:x@mq.ap:5672/%2F")
    refused = octoctl(coord.target, "broker", "set", "vault", "--url", "amqp://app:****@elsewhere:5672/%2F",
                      check=False)
    assert refused.returncode == 1 and "****" in refused.stderr
    shown = octoctl_json(coord.target, "broker", "show", "vault")
    assert [e["selector"] for e in shown["endpoints"]] == ["dc=eu", "dc=ap"]
    # Where a queue lives is an admin's: a bad broker is refused in one line.
    for args, message in [(("queue", "add", "x", "--broker", "nope"), "broker 'nope' not found"),
                          (("queue", "add", "x", "--broker", "vault", "--backend", "redis"),
                           "broker 'vault' has backend amqp, not redis"),
                          (("queue", "add", "x", "--broker", "vault", "--url", "amqp://h/%2F"),
                           "give --url or --broker, not both"),
                          (("broker", "add", "vault", "--backend", "amqp", "--url", "amqp://h/%2F"),
                           "broker 'vault' already exists"),
                          (("broker", "add", "b2", "--backend", "amqp", "--url", "amqp://h/%2F",
                            "--url", "dc ~ x=amqp://h/%2F"), "endpoint 'dc ~ x'")]:
        refused = octoctl(coord.target, *args, check=False)
        assert refused.returncode == 1, args
        assert refused.stderr.startswith("error: ") and message in refused.stderr and refused.stderr.count("\n") == 1


def test_a_standalone_node_has_no_named_brokers(tmp_path: Path) -> None:
    from octobot.node import config as node_config

    file = tmp_path / "node.yml"
    file.write_text("queues:\n- name: q\n  backend: redis\n  url: redis://127.0.0.1:6379/0\n- name: r\n  broker: main\n")
    with pytest.raises(node_config.ConfigError, match=r"queues\[1\].broker: named brokers live in a coordinator"):
        node_config.load(file)
    file.write_text("queues:\n- name: q\n  backend: redis\n")
    with pytest.raises(node_config.ConfigError, match=r"queues\[0\].url: a queue needs a broker URL"):
        node_config.load(file)


def test_a_coordinator_refuses_queues_that_live_inside_one_process(procs: Processes, tmp_path: Path) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    message = "the memory backend keeps its queues inside one process"
    for args in (("queue", "add", "m", "--backend", "memory", "--url", "memory://x"),
                 ("broker", "add", "m", "--backend", "memory", "--url", "memory://x")):
        refused = octoctl(coord.target, *args, check=False)
        assert refused.returncode == 1 and message in refused.stderr
    refused = octoctl(coord.target, "apply", "-f", "-", check=False,
                      input="queues:\n- name: m\n  backend: memory\n  url: memory://x\n")
    assert refused.returncode == 1 and message in refused.stderr
    octoctl(coord.target, "queue", "add", "m", "--backend", "sqlite")
    refused = octoctl(coord.target, "queue", "set", "m", "--backend", "memory", "--url", "memory://x", check=False)
    assert refused.returncode == 1 and message in refused.stderr
    assert octoctl_json(coord.target, "queue", "show", "m")["backend"] == "sqlite"
