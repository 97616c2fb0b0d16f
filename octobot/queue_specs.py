"""Defaults and validation of queue specs, shared by create and update."""

from __future__ import annotations

import re
from typing import Any

from octobot import backends
from octobot.envelope import DEFAULT_MAX_BYTES
from octobot.selector import Selector
from octobot.v1 import queue_pb2

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
DEFAULTS: dict[str, Any] = {"priority": 5, "concurrency": 4, "max_retries": 3, "retry_backoff": 1.0,
                            "max_message_bytes": DEFAULT_MAX_BYTES}
# Fields an update may name; name and timestamps are fixed.
UPDATABLE = ("backend", "url", "priority", "concurrency", "selector", "max_retries", "retry_backoff",
             "task_timeout", "paused", "max_message_bytes", "options")
MAX_CONCURRENCY = 1000


def with_defaults(spec: queue_pb2.QueueSpec) -> queue_pb2.QueueSpec:
    """A copy of ``spec`` with zero fields set to their defaults and the URL filled in."""
    out = queue_pb2.QueueSpec()
    out.CopyFrom(spec)
    for key, value in DEFAULTS.items():
        if not out.HasField(key):
            setattr(out, key, value)
    if not out.url and out.backend:
        try:
            out.url = backends.backend_class(out.backend).default_url
        except ValueError:
            pass  # validate() names the unknown backend
    return out


def validate(spec: queue_pb2.QueueSpec) -> queue_pb2.QueueSpec:
    """Check every field; return the spec with its URL in canonical form.
    ValueError says which field is wrong and why."""
    if not NAME.match(spec.name):
        raise ValueError(f"queue name {spec.name!r} is invalid: use letters, digits, '_', '.', '-' (max 128)")
    if not 1 <= spec.priority <= 10:
        raise ValueError(f"priority must be between 1 and 10, got {spec.priority}")
    if not 1 <= spec.concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {spec.concurrency}")
    if spec.max_retries < 0:
        raise ValueError(f"max_retries must be 0 or more, got {spec.max_retries}")
    if spec.retry_backoff < 0 or spec.task_timeout < 0:
        raise ValueError("retry_backoff and task_timeout must be 0 or more")
    if spec.max_message_bytes <= 0:
        raise ValueError(f"max_message_bytes must be positive, got {spec.max_message_bytes}")
    Selector.parse(spec.selector)
    cls = backends.backend_class(spec.backend)
    out = queue_pb2.QueueSpec()
    out.CopyFrom(spec)
    out.url = cls.normalize_url(spec.url)
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
        else:
            setattr(merged, path, getattr(new, path))
    if "backend" in paths and "url" not in paths:
        merged.url = backends.backend_class(merged.backend).default_url
    merged = validate(merged)
    changes = {p: (dict(merged.options) if p == "options" else getattr(merged, p)) for p in paths}
    if "url" not in changes and merged.url != current.url:
        changes["url"] = merged.url
    return merged, changes
