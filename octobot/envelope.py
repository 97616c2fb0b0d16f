"""The task message envelope: JSON, UTF-8, only ``task`` required.

    >>> env = Envelope.new("billing.charge", args=[42])
    >>> Envelope.parse(env.encode()).task
    'billing.charge'
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_MAX_BYTES = 1 << 20

# Random bytes for message ids, drawn 4 KiB at a time: one os.urandom call per
# id is a system call, and in a producer's loop a GIL hand-off, per message.
_ID_BYTES = 16
_random = bytearray()
_random_lock = threading.Lock()


def new_id() -> str:
    """A random 128-bit message id in hex, like uuid4().hex."""
    with _random_lock:
        if not _random:
            _random.extend(os.urandom(_ID_BYTES * 256))
        chunk = _random[-_ID_BYTES:]
        del _random[-_ID_BYTES:]
    return chunk.hex()


# A child process must not hand out the ids its parent drew.
os.register_at_fork(after_in_child=_random.clear)


def _no_constants(name: str) -> None:
    # Python's json accepts NaN and Infinity; JSON does not, and they poison arithmetic.
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every message: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def _count(value: object) -> bool:
    """A non-negative integer; JSON true/false are not counts."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class BadMessage(ValueError):
    """A message that can never run; it goes to dead letters with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Envelope:
    task: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    enqueued_at: float = 0.0
    attempt: int = 0
    # None: the queue's max_retries applies.
    max_retries: int | None = None

    @classmethod
    def new(cls, task: str, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None,
            max_retries: int | None = None) -> Envelope:
        return cls(task=task, args=list(args or []), kwargs=dict(kwargs or {}), id=new_id(),
                   enqueued_at=time.time(), max_retries=max_retries)

    @classmethod
    def parse(cls, body: bytes | str, max_bytes: int = DEFAULT_MAX_BYTES) -> Envelope:
        """Decode and validate one message; raise BadMessage saying why it cannot run."""
        raw = body.encode() if isinstance(body, str) else body
        if max_bytes and len(raw) > max_bytes:
            raise BadMessage(f"message is {len(raw)} bytes, over the {max_bytes}-byte limit")
        try:
            data = _DECODER.decode(raw.decode())
        except json.JSONDecodeError as exc:
            raise BadMessage(f"not JSON: {exc.msg} at character {exc.pos}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadMessage(f"not JSON: {exc}") from None
        except RecursionError:  # the decoder recurses once per level of nesting
            raise BadMessage("nested too deep (arrays and objects within each other)") from None
        if not isinstance(data, dict):
            raise BadMessage("not a JSON object")
        task = data.get("task")
        if not isinstance(task, str) or not task:
            raise BadMessage("missing 'task'")
        args = data.get("args", [])
        kwargs = data.get("kwargs", {})
        if not isinstance(args, list):
            raise BadMessage("'args' is not a list")
        if not isinstance(kwargs, dict):
            raise BadMessage("'kwargs' is not an object")
        max_retries = data.get("max_retries")
        if max_retries is not None and not _count(max_retries):
            raise BadMessage("'max_retries' is not a non-negative integer")
        attempt = data.get("attempt", 0)
        if not _count(attempt):
            raise BadMessage("'attempt' is not a non-negative integer")
        enqueued_at = data.get("enqueued_at", 0.0)
        if isinstance(enqueued_at, bool) or not isinstance(enqueued_at, (int, float)):
            raise BadMessage("'enqueued_at' is not a number of seconds")
        return cls(task=task, args=args, kwargs=kwargs, id=str(data.get("id") or ""),
                   enqueued_at=float(enqueued_at), attempt=attempt, max_retries=max_retries)

    def completed(self) -> Envelope:
        """This envelope with an id and an enqueue time, as producers send it."""
        return replace(self, id=self.id or new_id(), enqueued_at=self.enqueued_at or time.time())

    def next_attempt(self) -> Envelope:
        return replace(self, attempt=self.attempt + 1)

    def encode(self) -> bytes:
        data: dict[str, Any] = {"task": self.task, "args": self.args, "kwargs": self.kwargs,
                                "id": self.id, "enqueued_at": self.enqueued_at, "attempt": self.attempt}
        if self.max_retries is not None:
            data["max_retries"] = self.max_retries
        return json.dumps(data, separators=(",", ":")).encode()
