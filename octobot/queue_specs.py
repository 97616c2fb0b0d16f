"""Defaults and validation of queue specs, shared by create, update and apply,
and the diff that apply makes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from octobot import backends
from octobot.envelope import DEFAULT_MAX_BYTES
from octobot.secrets import keep_stored_secret, normalized, refuse_redacted
from octobot.selector import Selector
from octobot.v1 import admin_pb2, queue_pb2

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}\Z")  # \Z: "$" would take a trailing newline
DEFAULTS: dict[str, Any] = {"priority": 5, "concurrency": 4, "max_retries": 3, "retry_backoff": 1.0,
                            "max_message_bytes": DEFAULT_MAX_BYTES}
# Fields an update may name; name and timestamps are fixed.
UPDATABLE = ("backend", "url", "broker", "priority", "concurrency", "selector", "max_retries", "retry_backoff",
             "task_timeout", "paused", "max_message_bytes", "options", "tasks")
# The fields that say where a queue lives: changing them takes an admin.
WHERE = ("backend", "url", "broker")
NEEDS_URL = "a queue needs a broker URL (--url) or a named broker (--broker)"
MAX_CONCURRENCY = 1000
# Retries double the backoff each time; a week bounds the delays and timeouts.
MAX_RETRIES = 100
MAX_SECONDS = 7 * 86400.0
MAX_URL = 2048
MAX_SELECTOR = 1024
MAX_OPTIONS = 64
MAX_OPTION_CHARS = 1024
# A named broker's URLs for nodes in some places (a datacenter each, say).
MAX_ENDPOINTS = 64
# Named brokers a store holds: with their URLs at most 130 KiB each, a listing stays far below gRPC's 64 MiB.
MAX_BROKERS = 100
# Tasks a queue declares: names as @octobot.task registers them (a node's
# Hello carries them), or a prefix ending in "*".
MAX_TASK_PATTERNS = 100
TASK_PATTERN = re.compile(r"[^\s*]{1,255}\*?|\*")
# gRPC's message limit (an Enqueue carries messages) and far above what brokers take by default.
MAX_MESSAGE_BYTES = 64 << 20


def with_defaults(spec: queue_pb2.QueueSpec) -> queue_pb2.QueueSpec:
    """A copy of ``spec`` with zero fields set to their defaults, and the URL of
    a broker inside the node (SQLite) filled in: a network broker's never is."""
    out = queue_pb2.QueueSpec()
    out.CopyFrom(spec)
    for key, value in DEFAULTS.items():
        if not out.HasField(key):
            setattr(out, key, value)
    if not out.url and not out.broker and out.backend:
        try:
            out.url = backends.backend_class(out.backend).default_url
        except ValueError:
            pass  # validate() names the unknown backend
    return out


class SpecError(ValueError):
    """A bad queue setting; ``field`` is the QueueSpec field it concerns."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def validate(spec: queue_pb2.QueueSpec) -> queue_pb2.QueueSpec:
    """Check every field; return the spec with its URL in canonical form.
    SpecError says which field is wrong and why."""
    if not NAME.fullmatch(spec.name):
        raise SpecError("name", f"queue name {spec.name!r} is invalid: use letters, digits, '_', '.', '-' (max 128)")
    if not 1 <= spec.priority <= 10:
        raise SpecError("priority", f"priority must be between 1 and 10, got {spec.priority}")
    if not 1 <= spec.concurrency <= MAX_CONCURRENCY:
        raise SpecError("concurrency", f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {spec.concurrency}")
    for name, high in (("max_retries", MAX_RETRIES), ("retry_backoff", MAX_SECONDS), ("task_timeout", MAX_SECONDS)):
        value = getattr(spec, name)
        if not 0 <= value <= high:  # NaN fails too
            raise SpecError(name, f"{name} must be between 0 and {high:g}, got {value}")
    for name, high in (("url", MAX_URL), ("selector", MAX_SELECTOR)):
        value = getattr(spec, name)
        # Printable: PostgreSQL refuses NUL in text.
        if len(value) > high or not value.isprintable():
            raise SpecError(name, f"{name} must be at most {high} printable characters")
    if len(spec.options) > MAX_OPTIONS or any(len(k) > MAX_OPTION_CHARS or len(v) > MAX_OPTION_CHARS
                                              for k, v in spec.options.items()):
        raise SpecError("options", f"at most {MAX_OPTIONS} options of {MAX_OPTION_CHARS} characters")
    if len(spec.tasks) > MAX_TASK_PATTERNS or not all(TASK_PATTERN.fullmatch(t) and t.isprintable()
                                                               for t in spec.tasks):
        raise SpecError("tasks", f"tasks must be at most {MAX_TASK_PATTERNS} task names or prefixes ending in *"
                                 " (such as emails.*), without spaces")
    if len(set(spec.tasks)) != len(spec.tasks):
        raise SpecError("tasks", "tasks must not name a task twice")
    if not 0 < spec.max_message_bytes <= MAX_MESSAGE_BYTES:
        raise SpecError("max_message_bytes", f"max_message_bytes must be between 1 and {MAX_MESSAGE_BYTES}, "
                                             f"got {spec.max_message_bytes}")
    try:
        Selector.parse(spec.selector)
        # A queue declared on a named broker may leave its backend to the broker (the coordinator fills it in).
        cls = backends.backend_class(spec.backend) if spec.backend or not spec.broker else None
    except ValueError as exc:
        raise SpecError("selector" if spec.selector and "selector" in str(exc) else "backend", str(exc)) from None
    try:
        if cls is not None:
            cls.check_options(spec.options)
    except ValueError as exc:
        raise SpecError("options", str(exc)) from None
    out = queue_pb2.QueueSpec()
    out.CopyFrom(spec)
    if spec.broker:
        if not NAME.fullmatch(spec.broker):
            raise SpecError("broker", f"broker name {spec.broker[:140]!r} is invalid: use letters, digits, '_', '.',"
                                      " '-' (max 128)")
        if spec.url or spec.endpoints:  # as stored or declared: the URLs are the broker's
            raise SpecError("url", "give --url or --broker, not both")
        return out
    if not spec.url or cls is None:
        raise SpecError("url", NEEDS_URL)
    try:
        out.url = normalized(spec.url, cls.normalize_url)
    except ValueError as exc:
        raise SpecError("url", str(exc)) from None
    return out


def validate_broker(broker: queue_pb2.Broker) -> queue_pb2.Broker:
    """Check a named broker; return it with its URLs in canonical form. SpecError names the field."""
    if not NAME.fullmatch(broker.name):
        raise SpecError("name", f"broker name {broker.name[:140]!r} is invalid: use letters, digits, '_', '.', '-'"
                                " (max 128)")
    try:
        cls = backends.backend_class(broker.backend)
    except ValueError as exc:
        raise SpecError("backend", str(exc)) from None
    if len(broker.endpoints) > MAX_ENDPOINTS:
        raise SpecError("endpoints", f"at most {MAX_ENDPOINTS} endpoints")
    out = queue_pb2.Broker()
    out.CopyFrom(broker)
    out.url = _broker_url(cls, broker.url, "the default URL (for nodes no endpoint selects)")
    del out.endpoints[:]
    for endpoint in broker.endpoints:
        where = f"endpoint {endpoint.selector[:64]!r}"
        if not endpoint.selector:
            raise SpecError("endpoints", "an endpoint needs a selector: SELECTOR=URL, such as dc=eu-west=redis://...")
        if any(e.selector == endpoint.selector for e in out.endpoints):
            raise SpecError("endpoints", f"{where} is given twice")
        if len(endpoint.selector) > MAX_SELECTOR or not endpoint.selector.isprintable():
            raise SpecError("endpoints", f"{where}: a selector has at most {MAX_SELECTOR} printable characters")
        try:
            Selector.parse(endpoint.selector)
        except ValueError as exc:
            raise SpecError("endpoints", f"{where}: {exc}") from None
        out.endpoints.add(selector=endpoint.selector, url=_broker_url(cls, endpoint.url, where))
    return out


def _broker_url(cls: type[backends.Backend], url: str, where: str) -> str:
    if not url:
        raise SpecError("url", f"{where}: a URL is required")
    if len(url) > MAX_URL or not url.isprintable():
        raise SpecError("url", f"{where}: at most {MAX_URL} printable characters")
    try:
        return normalized(url, cls.normalize_url)
    except ValueError as exc:
        raise SpecError("url", f"{where}: {exc}") from None


Binding = tuple[str, str, tuple[tuple[str, str], ...]]


def binding(spec: queue_pb2.QueueSpec) -> Binding:
    """What a connection to a queue's broker depends on: backend, URL and options."""
    return spec.backend, spec.url, tuple(sorted(spec.options.items()))


def endpoint_for(spec: queue_pb2.QueueSpec, labels: Mapping[str, str]) -> str:
    """The URL a node with ``labels`` uses: the first endpoint whose selector matches, else the queue's URL."""
    for endpoint in spec.endpoints:
        if Selector.parse(endpoint.selector).matches(labels):
            return endpoint.url
    return spec.url


def for_node(assignment: queue_pb2.Assignment, labels: Mapping[str, str]) -> queue_pb2.Assignment:
    """An assignment as a node with ``labels`` runs it: each queue on its endpoint's URL."""
    out = queue_pb2.Assignment()
    out.CopyFrom(assignment)
    for spec in out.queues:
        if spec.endpoints:
            spec.url = endpoint_for(spec, labels)
            del spec.endpoints[:]
    return out


def merge_update(current: queue_pb2.QueueSpec, new: queue_pb2.QueueSpec, paths: list[str]) -> tuple[queue_pb2.QueueSpec, dict[str, Any]]:
    """Apply the named fields of ``new`` to ``current``; return the validated result and the changes."""
    unknown = [p for p in paths if p not in UPDATABLE]
    if unknown:
        raise ValueError(f"cannot update {', '.join(unknown)} (updatable: {', '.join(UPDATABLE)})")
    if not paths:
        raise ValueError("update names no fields")
    merged = queue_pb2.QueueSpec()
    merged.CopyFrom(current)
    for path in paths:
        if path == "options":
            merged.options.clear()
            merged.options.update(new.options)
        elif path == "tasks":
            merged.tasks[:] = new.tasks
        elif path == "url":
            merged.url = keep_stored_secret(new.url, current.url)
        else:
            setattr(merged, path, getattr(new, path))
    if "url" in paths and "broker" not in paths:
        merged.broker = ""  # a URL of its own takes the queue off its broker
    elif "broker" in paths and not merged.broker and "url" not in paths:
        merged.url = ""  # off its broker, a queue needs a URL given, not the broker's kept
    if merged.broker:  # the broker's URLs, which the store fills in when it reads the queue
        merged.url = ""
        del merged.endpoints[:]
    elif "backend" in paths and "url" not in paths:
        merged.url = backends.backend_class(merged.backend).default_url
    merged = validate(merged)
    changes = {p: field_value(merged, p) for p in paths}
    for where in ("url", "broker"):
        if where not in changes and field_value(merged, where) != field_value(stored(current), where):
            changes[where] = field_value(merged, where)
    return merged, changes


def stored(spec: queue_pb2.QueueSpec) -> queue_pb2.QueueSpec:
    """``spec`` as declared and stored: a queue on a named broker without the URLs the store filled in."""
    if not spec.broker:
        return spec
    out = queue_pb2.QueueSpec()
    out.CopyFrom(spec)
    out.url = ""
    del out.endpoints[:]
    return out


def validate_all(specs: list[queue_pb2.QueueSpec]) -> list[queue_pb2.QueueSpec]:
    """Defaults and validation for a declared set of queues; errors name the queue."""
    out = []
    for spec in specs:
        try:
            out.append(validate(with_defaults(spec)))
        except SpecError as exc:
            raise SpecError(exc.field, f"queue {spec.name!r}: {exc}") from None
    # A Counter: names.count() for each name took quadratic time on a large apply.
    duplicate = next((n for n, k in Counter(q.name for q in out).items() if k > 1), None)
    if duplicate:
        raise ValueError(f"queue {duplicate!r} is declared twice")
    return out


def field_value(spec: queue_pb2.QueueSpec, name: str) -> Any:
    """A QueueSpec field as a plain value (options as a dict, tasks as a list)."""
    if name == "options":
        return dict(sorted(spec.options.items()))
    if name == "tasks":
        return list(spec.tasks)
    return getattr(spec, name)


def changed_fields(current: queue_pb2.QueueSpec, desired: queue_pb2.QueueSpec) -> list[str]:
    """The updatable fields whose values differ."""
    return [f for f in UPDATABLE if field_value(current, f) != field_value(desired, f)]


def _with_stored_secret(spec: queue_pb2.QueueSpec, old: queue_pb2.QueueSpec | None) -> queue_pb2.QueueSpec:
    """A declared spec whose URL is the redacted form of the stored one (a file
    written by ``queue list -o yaml``) keeps the stored secret."""
    out = queue_pb2.QueueSpec()
    out.CopyFrom(spec)
    try:
        out.url = refuse_redacted(spec.url) if old is None else keep_stored_secret(spec.url, old.url)
    except ValueError as exc:
        raise SpecError("url", f"queue {spec.name!r}: {exc}") from None
    return out


def diff(current: list[queue_pb2.QueueSpec], desired: list[queue_pb2.QueueSpec],
         prune: bool) -> list[admin_pb2.QueueChange]:
    """The changes that turn the ``current`` queues into the ``desired`` ones (both
    complete, validated specs): creates and updates in the order declared, then,
    with ``prune``, deletes of the undeclared queues by name."""
    have = {q.name: q for q in current}
    changes = []
    for spec in desired:
        old = have.get(spec.name)
        spec = _with_stored_secret(spec, old)
        if old is None:
            changes.append(admin_pb2.QueueChange(kind=admin_pb2.QUEUE_CHANGE_KIND_CREATE, name=spec.name, after=spec))
        elif fields := changed_fields(old, spec):
            changes.append(admin_pb2.QueueChange(kind=admin_pb2.QUEUE_CHANGE_KIND_UPDATE, name=spec.name,
                                                 fields=fields, before=old, after=spec))
    if prune:
        declared = {q.name for q in desired}
        changes += [admin_pb2.QueueChange(kind=admin_pb2.QUEUE_CHANGE_KIND_DELETE, name=q.name, before=q)
                    for q in sorted(current, key=lambda q: q.name) if q.name not in declared]
    return changes
