"""The one YAML queue format: standalone configs, `octoctl apply -f` and `queue list -o yaml`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from support.brokers import REDIS_URL
from octobot import queue_file, queue_specs
from octobot.node import config as node_config
from octobot.v1 import queue_pb2


def parse(**entry: object) -> queue_pb2.QueueSpec:
    return queue_file.parse_queue(entry, "q.yaml: queues[0]")


def test_original_keys_build_the_url() -> None:
    amqp = parse(name="tacos", protocol="AMQP", host="mq", port=5673, vhost="/", username="u", password="p@ss",
                 workers=6, priority=7)
    assert (amqp.backend, amqp.url, amqp.concurrency, amqp.priority) == ("amqp", "amqp://u:p%40ss@mq:5673/%2F", 6, 7)
    assert parse(name="r", protocol="Redis", host="h", db=2).url == "redis://h:6379/2"
    assert parse(name="b", protocol="Beanstalk", port=11301).url == "beanstalk://127.0.0.1:11301"


def test_new_keys_and_defaults() -> None:
    spec = parse(name="emails", backend="redis", url=REDIS_URL, concurrency=16, selector="dc in (a,b)", max_retries=0,
                 retry_backoff=0.5, task_timeout=30, max_message_bytes=1000, paused=True,
                 options={"visibility_timeout": 5})
    assert (spec.concurrency, spec.selector, spec.max_retries, spec.retry_backoff, spec.task_timeout,
            spec.max_message_bytes, spec.paused, dict(spec.options)) == (
        16, "dc in (a,b)", 0, 0.5, 30.0, 1000, True, {"visibility_timeout": "5"})
    bare = parse(name="emails", backend="redis", url=REDIS_URL)
    assert bare == queue_specs.validate(queue_specs.with_defaults(queue_pb2.QueueSpec(name="emails", backend="redis",
                                                                                      url=REDIS_URL)))


@pytest.mark.parametrize("entry, error", [
    ({"name": "q", "backend": "redis", "priority": 11}, "queues[0].priority: priority must be between 1 and 10, got 11"),
    ({"name": "q", "backend": "redis", "concurrency": 0}, "queues[0].concurrency: concurrency must be between"),
    ({"name": "q", "backend": "redis", "workers": 0}, "queues[0].workers: concurrency must be between"),
    ({"name": "q", "backend": "redis", "workers": 2, "concurrency": 2}, "queues[0].workers: give workers or concurrency, not both"),
    ({"name": "q", "protocol": "redis", "backend": "redis"}, "queues[0].protocol: give protocol or backend, not both"),
    ({"name": "q", "backend": "redis", "url": "redis://h", "host": "h"}, "queues[0].url: give url or host, not both"),
    ({"name": "q", "backend": "redis", "selector": "dc in (a b"}, "queues[0].selector: bad selector term"),
    ({"name": "q", "backend": "redis", "selector": ["dc=a"]}, "queues[0].selector: must be a string"),
    ({"name": "q", "backend": "redis", "paused": "yes"}, "queues[0].paused: 'yes' is not a valid paused"),
    ({"name": "q", "backend": "redis", "priority": True}, "queues[0].priority: True is not a valid priority"),
    ({"name": "q", "backend": "redis", "options": ["a"]}, "queues[0].options: must be a mapping"),
    ({"name": "q", "backend": "sqlite", "path": ":memory:"}, "queues[0].path: "),
    ({"name": "q"}, "queues[0].backend: missing"),
    ({"name": "bad name", "backend": "redis"}, "queues[0].name: queue name 'bad name' is invalid"),
    ({"backend": "redis"}, "queues[0].name: missing"),
    ({"name": "q", "backend": "redis", "prio": 1}, "queues[0].prio: unknown key"),
])
def test_errors_name_the_key(entry: dict, error: str) -> None:
    with pytest.raises(queue_file.FileError) as info:
        queue_file.parse_queue(entry, "q.yaml: queues[0]")
    assert str(info.value).startswith(f"q.yaml: {error}"), str(info.value)


def test_load_and_dump_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "queues.yaml"
    path.write_text(f"queues:\n  - {{name: a, backend: redis, url: '{REDIS_URL}', concurrency: 8,"
                    " options: {visibility_timeout: 9}}\n"
                    "  - {name: b, protocol: SQLite, path: q.db, workers: 2, selector: '!gpu', paused: true}\n")
    queues = queue_file.load(path)
    assert [(q.name, q.concurrency) for q in queues] == [("a", 8), ("b", 2)]
    text = queue_file.dump(queues)
    assert text.startswith("queues:\n- name: a\n  backend: redis\n")
    assert queue_file.dump(queue_file.load(io.StringIO(text))) == text
    assert queue_file.load(io.StringIO("queues: []\n")) == []


@pytest.mark.parametrize("body, error", [
    ("queues: [\n", "stdin: not valid YAML at line 2"),
    ("- name: a\n", "stdin: expected a mapping with a 'queues' list"),
    ("queues: []\nmax_workers: 3\n", "stdin: max_workers: unknown key"),
    ("queues: {a: 1}\n", "stdin: queues: a list is required"),
    (f"queues:\n  - {{name: a, backend: redis, url: '{REDIS_URL}'}}\n"
     f"  - {{name: a, backend: redis, url: '{REDIS_URL}'}}\n",
     "stdin: queues: 'a' is defined twice"),
    (f"queues:\n  - {{name: a, backend: redis, url: '{REDIS_URL}'}}\n"
     f"  - {{name: b, backend: redis, url: '{REDIS_URL}', priority: 0}}\n",
     "stdin: queues[1].priority: priority must be between 1 and 10, got 0"),
])
def test_load_errors(body: str, error: str) -> None:
    stream = io.StringIO(body)
    stream.name = "<stdin>"
    with pytest.raises(queue_file.FileError) as info:
        queue_file.load(stream)
    assert str(info.value).startswith(error), str(info.value)


def test_standalone_config_reads_the_same_entries(tmp_path: Path) -> None:
    path = tmp_path / "octobot.yml"
    path.write_text(f"Octobot:\n  queues:\n    - {{name: a, backend: redis, url: '{REDIS_URL}', concurrency: 8,"
                    " selector: 'dc=x'}\n"
                    "    - {name: b, protocol: Redis, host: 127.0.0.1, workers: 3}\n  max_workers: 4\n")
    config = node_config.load(path)
    assert config.queues == queue_file.parse_queues([{"name": "a", "backend": "redis", "url": REDIS_URL,
                                                      "concurrency": 8, "selector": "dc=x"},
                                                     {"name": "b", "backend": "redis",
                                                      "url": "redis://127.0.0.1:6379/0", "concurrency": 3}], "x")
    assert config.max_workers == 4
