"""Queues declared in YAML: the one parser behind a standalone node's config
(``octobot-node --config``) and ``octoctl apply -f``, and the writer behind
``octoctl queue list -o yaml``, so the three agree on the format.

    queues:
      - name: emails
        backend: redis               # or the original's protocol: Redis
        url: redis://127.0.0.1:6379/0   # or the original's host, port, db, vhost,
                                     # username, password (amqp), path (sqlite);
                                     # or broker: main, a named broker (octoctl)
        priority: 8
        concurrency: 16              # or the original's workers: 16
        selector: dc=us-east
        max_retries: 3
        retry_backoff: 1.0
        task_timeout: 0.0
        max_message_bytes: 1048576
        paused: false
        options: {visibility_timeout: "30"}

    specs = queue_file.load("queues.yaml")   # validated QueueSpecs, defaults filled

A setting left out takes its default. Errors are one line naming the file
and the key: ``queues.yaml: queues[1].priority: priority must be between 1
and 10, got 11``.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import yaml

from octobot import queue_specs
from octobot.secrets import quote_keeping_references
from octobot.v1 import queue_pb2

# The original's connection keys, from which the broker URL is built.
CONNECTION_KEYS = ("host", "port", "db", "vhost", "username", "password", "path", "heartbeat")
# Keys that set a QueueSpec field of the same name, and the original's alias.
FIELD_KEYS = ("priority", "concurrency", "selector", "max_retries", "retry_backoff", "task_timeout",
              "max_message_bytes", "paused")
ALIASES = {"protocol": "backend", "workers": "concurrency"}
KNOWN_KEYS = {"name", "backend", "url", "broker", "options", "arguments", "tasks", *FIELD_KEYS, *CONNECTION_KEYS,
              *ALIASES}


class FileError(ValueError):
    """A problem with a queues file, said in one line that names the file and the key."""


def read_yaml(source: str | Path | IO[str]) -> tuple[Any, str]:
    """Parse a YAML file (a path, or an open stream such as stdin); return the
    data and the name errors call the file by."""
    if isinstance(source, (str, Path)):
        name = Path(source).name
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise FileError(f"{name}: cannot read: {exc.strerror}") from None
    else:
        given = str(getattr(source, "name", "") or "-")
        name = "stdin" if given in ("<stdin>", "-") else Path(given).name
        text = source.read()
    try:
        return yaml.safe_load(text), name
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise FileError(f"{name}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None


def _url(backend: str, entry: dict[str, Any]) -> str:
    """The broker URL: ``url`` as given, else built from the original's connection
    keys, else empty (the backend's default)."""
    if "url" in entry:
        return str(entry["url"])
    if not any(k in entry for k in CONNECTION_KEYS):
        return ""
    host = entry.get("host", "127.0.0.1")
    user, password = entry.get("username"), entry.get("password")
    # A ${env:NAME} or ${file:/path} password stays a reference, resolved by the node.
    auth = (f"{quote_keeping_references(str(user or ''))}:{quote_keeping_references(str(password or ''))}@"
            if user or password else "")
    if backend == "amqp":
        heartbeat = f"?heartbeat={entry['heartbeat']}" if "heartbeat" in entry else ""
        return (f"amqp://{auth}{host}:{entry.get('port', 5672)}/{quote(str(entry.get('vhost', '/')), safe='')}"
                f"{heartbeat}")
    if backend == "redis":
        return f"redis://{auth}{host}:{entry.get('port', 6379)}/{entry.get('db', 0)}"
    if backend == "beanstalk":
        return f"beanstalk://{host}:{entry.get('port', 11300)}"
    if backend == "sqlite":
        return f"sqlite:///{entry.get('path', 'octobot-queues.db')}"
    return ""


def _key_of(field: str, entry: dict[str, Any]) -> str:
    """The key an entry used for a QueueSpec field, to name it in an error."""
    for alias, name in ALIASES.items():
        if name == field and alias in entry:
            return alias
    if field == "url" and "url" not in entry:
        return next((k for k in CONNECTION_KEYS if k in entry), "url")
    return field


def _string(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry[key]
    if isinstance(value, (dict, list)) or value is None:
        raise FileError(f"{where}.{key}: must be a string")
    return str(value)


def parse_queue(entry: Any, where: str) -> queue_pb2.QueueSpec:
    """One queue entry as a validated QueueSpec with defaults filled; ``where``
    (``queues.yaml: queues[1]``) starts every error."""
    if not isinstance(entry, dict):
        raise FileError(f"{where}: must be a mapping of queue settings")
    unknown = sorted(set(map(str, entry)) - KNOWN_KEYS)
    if unknown:
        raise FileError(f"{where}.{unknown[0]}: unknown key")
    if "name" not in entry:
        raise FileError(f"{where}.name: missing")
    for alias, key in ALIASES.items():
        if alias in entry and key in entry:
            raise FileError(f"{where}.{alias}: give {alias} or {key}, not both")
    connection = [k for k in CONNECTION_KEYS if k in entry]
    if "url" in entry and connection:
        raise FileError(f"{where}.url: give url or {', '.join(connection)}, not both")
    if "broker" in entry and ("url" in entry or connection):
        raise FileError(f"{where}.broker: give broker or {', '.join(['url'] if 'url' in entry else connection)}, "
                        "not both")
    backend_key = "protocol" if "protocol" in entry else "backend"
    if backend_key not in entry and "broker" not in entry:
        raise FileError(f"{where}.backend: missing (redis, amqp, beanstalk or sqlite)")
    backend = _string(entry, backend_key, where).lower() if backend_key in entry else ""
    if "heartbeat" in entry and backend != "amqp":
        raise FileError(f"{where}.heartbeat: only AMQP connections have a heartbeat")
    spec = queue_pb2.QueueSpec(name=_string(entry, "name", where), backend=backend, url=_url(backend, entry),
                               broker=_string(entry, "broker", where) if "broker" in entry else "")
    for key in (*FIELD_KEYS, "workers"):
        if key not in entry:
            continue
        value = entry[key]
        if key == "selector":
            value = _string(entry, key, where)
        try:
            setattr(spec, ALIASES.get(key, key), value)
        except (TypeError, ValueError):
            raise FileError(f"{where}.{key}: {value!r} is not a valid {key}") from None
    for key in ("options", "arguments"):  # the original's AMQP queue arguments are options here
        options = entry.get(key) or {}
        if not isinstance(options, dict):
            raise FileError(f"{where}.{key}: must be a mapping")
        spec.options.update({str(k): str(v) for k, v in options.items()})
    tasks = entry.get("tasks") or []
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise FileError(f"{where}.tasks: must be a list of task names or prefixes such as emails.*")
    spec.tasks.extend(tasks)
    try:
        return queue_specs.validate(queue_specs.with_defaults(spec))
    except queue_specs.SpecError as exc:
        raise FileError(f"{where}.{_key_of(exc.field, entry)}: {exc}") from None


def parse_queues(entries: Any, name: str, allow_empty: bool = False) -> list[queue_pb2.QueueSpec]:
    """The ``queues`` list of the file called ``name``; names must be unique."""
    if not isinstance(entries, list) or not (entries or allow_empty):
        raise FileError(f"{name}: queues: a {'' if allow_empty else 'non-empty '}list is required")
    queues = [parse_queue(entry, f"{name}: queues[{i}]") for i, entry in enumerate(entries)]
    names = [q.name for q in queues]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise FileError(f"{name}: queues: {duplicate!r} is defined twice")
    return queues


def load(source: str | Path | IO[str]) -> list[queue_pb2.QueueSpec]:
    """A declared set of queues (``octoctl apply -f``): a mapping whose one key
    is ``queues``, a list that may be empty."""
    data, name = read_yaml(source)
    if not isinstance(data, dict) or "queues" not in data:
        raise FileError(f"{name}: expected a mapping with a 'queues' list")
    unknown = sorted(set(map(str, data)) - {"queues"})
    if unknown:
        raise FileError(f"{name}: {unknown[0]}: unknown key")
    return parse_queues(data["queues"], name, allow_empty=True)


def dump(queues: list[queue_pb2.QueueSpec]) -> str:
    """The queues in the format ``load`` reads, every setting spelled out."""
    # A queue on a named broker is written with the broker's name, one of its own with its URL.
    entries = [{"name": q.name, **{f: queue_specs.field_value(q, f) for f in queue_specs.UPDATABLE
                                   if f != ("url" if q.broker else "broker")}} for q in queues]
    return yaml.safe_dump({"queues": entries}, sort_keys=False, default_flow_style=False, allow_unicode=True)
