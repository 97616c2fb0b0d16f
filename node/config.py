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
          workers: 4               # worker threads (concurrency)
          max_retries: 3           # new keys: url, max_retries, retry_backoff,
          options: {x-queue-type: quorum}   # task_timeout, max_message_bytes, paused, db, path
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
from urllib.parse import quote

import yaml

from octobot import queue_specs
from octobot.v1 import queue_pb2

_CONNECTION_KEYS = {"protocol", "backend", "url", "host", "port", "vhost", "username", "password", "db", "path"}
# The original's names for QueueSpec fields, and the new ones as they are.
_SPEC_KEYS = {"workers": "concurrency", "priority": "priority", "max_retries": "max_retries",
              "retry_backoff": "retry_backoff", "task_timeout": "task_timeout",
              "max_message_bytes": "max_message_bytes", "paused": "paused"}
_ORIGINAL_NAMES = {"concurrency": "workers", "backend": "protocol"}
_TOP_KEYS = {"queues", "max_workers", "metrics_listen", "metrics_port", "startup_hook", "shutdown_hook"}


class ConfigError(ValueError):
    """A config problem, said in one line that names the file and the key."""


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


def _url(backend: str, entry: dict[str, Any]) -> str:
    """The broker URL from the original's connection keys (or ``url`` as given)."""
    if "url" in entry:
        return str(entry["url"])
    host = entry.get("host", "127.0.0.1")
    user, password = entry.get("username"), entry.get("password")
    auth = f"{quote(str(user or ''), safe='')}:{quote(str(password or ''), safe='')}@" if user or password else ""
    if backend == "amqp":
        return f"amqp://{auth}{host}:{entry.get('port', 5672)}/{quote(str(entry.get('vhost', '/')), safe='')}"
    if backend == "redis":
        return f"redis://{auth}{host}:{entry.get('port', 6379)}/{entry.get('db', 0)}"
    if backend == "beanstalk":
        return f"beanstalk://{host}:{entry.get('port', 11300)}"
    if backend == "sqlite":
        return f"sqlite:///{entry.get('path', 'octobot-queues.db')}"
    return ""


def _queue(entry: Any, where: str) -> queue_pb2.QueueSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping of queue settings")
    unknown = set(entry) - _CONNECTION_KEYS - set(_SPEC_KEYS) - {"name", "options"}
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key")
    if "name" not in entry:
        raise ConfigError(f"{where}.name: missing")
    backend = str(entry.get("backend") or entry.get("protocol") or "").lower()
    if not backend:
        raise ConfigError(f"{where}.protocol: missing (AMQP, Redis, Beanstalk or SQLite)")
    spec = queue_pb2.QueueSpec(name=str(entry["name"]), backend=backend, url=_url(backend, entry))
    for key, field_name in _SPEC_KEYS.items():
        if key in entry:
            try:
                setattr(spec, field_name, entry[key])
            except (TypeError, ValueError):
                raise ConfigError(f"{where}.{key}: {entry[key]!r} is not a valid {key}") from None
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}.options: must be a mapping")
    spec.options.update({str(k): str(v) for k, v in options.items()})
    try:
        return queue_specs.validate(queue_specs.with_defaults(spec))
    except queue_specs.SpecError as exc:
        raise ConfigError(f"{where}.{_ORIGINAL_NAMES.get(exc.field, exc.field)}: {exc}") from None


def load(path: str | Path) -> NodeConfig:
    """Read and check a standalone config; ConfigError says what is wrong and where."""
    name = Path(path).name
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{name}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if isinstance(data, dict) and set(data) == {"Octobot"}:
        data = data["Octobot"]
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping with a 'queues' list")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{name}: {sorted(unknown)[0]}: unknown key")
    entries = data.get("queues")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{name}: queues: a non-empty list is required")
    queues = [_queue(entry, f"{name}: queues[{i}]") for i, entry in enumerate(entries)]
    names = [q.name for q in queues]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"{name}: queues: {duplicate!r} is defined twice")
    max_workers = data.get("max_workers")
    if max_workers is not None and (not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1):
        raise ConfigError(f"{name}: max_workers: must be a positive integer")
    listen = data.get("metrics_listen")
    if listen is None and "metrics_port" in data:
        listen = f"127.0.0.1:{data['metrics_port']}"
    return NodeConfig(queues=queues, max_workers=max_workers, metrics_listen=listen,
                      startup_hook=data.get("startup_hook"), shutdown_hook=data.get("shutdown_hook"))
