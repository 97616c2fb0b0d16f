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
      email_enabled: true              # mail each dead letter (at most 10 mails a minute)
      email_to: ops@example.com        # or a list; email_from, email_server (localhost),
      email_port: 465                  # email_ssl (TLS from the start; else STARTTLS if offered),
      email_ssl: true                  # email_auth with email_username and email_password,
                                       # email_hostname (the name the node greets the server with)

Errors name the key: ``octobot.yml: queues[0].priority: must be between 1 and 10, got 11``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from octobot import queue_file
from octobot.node.notify import MailSettings
from octobot.v1 import queue_pb2

# The original's mail settings, for notices of dead letters (node/notify.py).
_EMAIL_KEYS = {"email_enabled", "email_from", "email_to", "email_hostname", "email_server", "email_port",
               "email_ssl", "email_auth", "email_username", "email_password"}
_TOP_KEYS = {"queues", "max_workers", "metrics_listen", "metrics_port", "startup_hook", "shutdown_hook", *_EMAIL_KEYS}

# A config problem, said in one line that names the file and the key.
ConfigError = queue_file.FileError


@dataclass
class NodeConfig:
    queues: list[queue_pb2.QueueSpec]
    max_workers: int | None = None
    metrics_listen: str | None = None
    startup_hook: str | None = None
    shutdown_hook: str | None = None
    mail: MailSettings | None = None
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
    on_broker = next((i for i, q in enumerate(queues) if q.broker), None)
    if on_broker is not None:
        raise ConfigError(f"{name}: queues[{on_broker}].broker: named brokers live in a coordinator; "
                          "a standalone node's queue gives its url")
    max_workers = data.get("max_workers")
    if max_workers is not None and (not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1):
        raise ConfigError(f"{name}: max_workers: must be a positive integer")
    listen = data.get("metrics_listen")
    if listen is None and "metrics_port" in data:
        listen = f"127.0.0.1:{data['metrics_port']}"
    return NodeConfig(queues=queues, max_workers=max_workers, metrics_listen=listen,
                      startup_hook=data.get("startup_hook"), shutdown_hook=data.get("shutdown_hook"),
                      mail=_mail(data, name))


def _mail(data: dict[str, Any], name: str) -> MailSettings | None:
    """The mail settings, if ``email_enabled``; each key checked for its type."""
    def value(key: str, kind: type, default: Any) -> Any:
        got = data.get(key, default)
        if not isinstance(got, kind) or (kind is int and isinstance(got, bool)):
            raise ConfigError(f"{name}: {key}: must be {'true or false' if kind is bool else kind.__name__}")
        return got

    if not value("email_enabled", bool, False):
        return None
    to = data.get("email_to")
    recipients = [to] if isinstance(to, str) else to
    if not recipients or not isinstance(recipients, list) or not all(isinstance(r, str) and r for r in recipients):
        raise ConfigError(f"{name}: email_to: an address, or a list of them, is required")
    port = value("email_port", int, 25)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name}: email_port: must be between 1 and 65535")
    auth = value("email_auth", bool, False)
    return MailSettings(sender=value("email_from", str, "octobot@localhost"), recipients=tuple(recipients),
                        server=value("email_server", str, "localhost"), port=port, ssl=value("email_ssl", bool, False),
                        username=value("email_username", str, "") if auth else "",
                        password=value("email_password", str, "") if auth else "",
                        hostname=value("email_hostname", str, ""))
