"""Standalone mode: a node's queues from a YAML file instead of a coordinator,
in the original Octobot's format plus the new keys.

    Octobot:                       # optional top-level key, as the original had
      queues:
        - name: tacotruck
          protocol: AMQP           # or backend: amqp (AMQP, Redis, Beanstalk, SQLite)
          host: localhost
          port: 5672
          vhost: /
          username: guest
          password: guest
          priority: 5
          workers: 4               # worker threads (or concurrency: 4)
          max_retries: 3           # and the new keys of octobot/queue_file.py: backend, url,
          options: {x-queue-type: quorum}   # selector, retry_backoff, task_timeout, ...
      max_workers: 10
      metrics_listen: 127.0.0.1:1228   # or metrics_port: 1228
      startup_hook: myapp.hooks:start
      shutdown_hook: myapp.hooks:stop

Errors name the key: ``octobot.yml: queues[0].priority: must be between 1 and 10, got 11``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octobot import queue_file
from octobot.v1 import queue_pb2

_TOP_KEYS = {"queues", "max_workers", "metrics_listen", "metrics_port", "startup_hook", "shutdown_hook"}

# A config problem, said in one line that names the file and the key.
ConfigError = queue_file.FileError


@dataclass
class NodeConfig:
    queues: list[queue_pb2.QueueSpec]
    max_workers: int | None = None
    metrics_listen: str | None = None
    startup_hook: str | None = None
    shutdown_hook: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def assignment(self) -> queue_pb2.Assignment:
        return queue_pb2.Assignment(generation=1, queues=self.queues)


def load(path: str | Path) -> NodeConfig:
    """Read and check a standalone config; ConfigError says what is wrong and where."""
    data, name = queue_file.read_yaml(path)
    if isinstance(data, dict) and set(data) == {"Octobot"}:
        data = data["Octobot"]
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping with a 'queues' list")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{name}: {sorted(unknown)[0]}: unknown key")
    queues = queue_file.parse_queues(data.get("queues"), name)
    max_workers = data.get("max_workers")
    if max_workers is not None and (not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1):
        raise ConfigError(f"{name}: max_workers: must be a positive integer")
    listen = data.get("metrics_listen")
    if listen is None and "metrics_port" in data:
        listen = f"127.0.0.1:{data['metrics_port']}"
    return NodeConfig(queues=queues, max_workers=max_workers, metrics_listen=listen,
                      startup_hook=data.get("startup_hook"), shutdown_hook=data.get("shutdown_hook"))
