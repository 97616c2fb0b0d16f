"""The contract every broker backend keeps.

A backend binds one queue on one broker. The public methods hold the shared
logic once (validation, dead-letter records); a broker module implements only
the small underscore primitives. Adding a broker means one module and one
entry point in the ``octobot.backends`` group:

    class MyBackend(Backend):
        schemes = ("my",)
        def _publish(self, bodies): ...
        def _fetch(self, max_count, timeout): ...
        ...

At least once: a fetched message stays owned by this consumer, invisible to
others, until it is acked, released, retried or dead-lettered. If the consumer
dies first, the broker hands it to another consumer after ``visibility_timeout``
seconds (Redis pending-entry reclaim, SQLite claim expiry).
"""

from __future__ import annotations

import base64
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from octobot.envelope import BadMessage, Envelope


class BrokerUnavailable(ConnectionError):
    """The broker cannot be reached now; the caller backs off and tries again."""


class BrokerRefused(BrokerUnavailable):
    """The broker is up but did not take a message (RabbitMQ's basic.nack: a full
    queue with reject-publish): as when it is unreachable, the message is not
    there, and the caller may try again later."""


@dataclass(slots=True)
class Delivery:
    """One fetched message and the backend's handle for acking it."""

    body: bytes
    receipt: Any


@dataclass(slots=True)
class DeadLetter:
    """A message that will not run again unless an operator retries it."""

    id: str
    body: bytes
    reason: str
    error: str
    failed_at: float
    # False for a record Octobot did not write (another client's, a broker
    # policy's): listed as it is, and retried only if it is a task message.
    readable: bool = True

    @property
    def retriable(self) -> bool:
        if self.readable:
            return True
        try:
            Envelope.parse(self.body, max_bytes=0)
        except BadMessage:
            return False
        return True

    def revived(self) -> bytes:
        """The body to publish again on an operator's retry: a valid envelope
        starts over at attempt 0, so it gets its full retries again."""
        try:
            envelope = Envelope.parse(self.body, max_bytes=0)
        except BadMessage:
            return self.body
        return replace(envelope, attempt=0).encode()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "body": _text(self.body), "reason": self.reason,
                "error": self.error, "failed_at": self.failed_at}


def _settled(error: Exception | None) -> Future[None]:
    future: Future[None] = Future()
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
    return future


def _text(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(body).decode()


def encode_dead(body: bytes, reason: str, error: str) -> bytes:
    """The stored form of a dead letter: JSON carrying the original body."""
    return json.dumps({"body": _text(body), "reason": reason, "error": error,
                       "failed_at": time.time()}).encode()


UNREADABLE = "unreadable: not a dead letter Octobot wrote (shown as it is; retried only if it is a task message)"


def decode_dead(dead_id: str, record: bytes, failed_at: float = 0.0) -> DeadLetter:
    """A stored dead letter; a record that is not one of ours comes back
    unreadable, with the record as its body, so one such record cannot
    break the listing or retrying of every other."""
    try:
        data = json.loads(record)
        body = data["body"]
        raw = base64.b64decode(body[7:], validate=True) if body.startswith("base64:") else body.encode()
        return DeadLetter(id=dead_id, body=raw, reason=str(data["reason"]), error=str(data.get("error", "")),
                          failed_at=float(data.get("failed_at", 0.0)))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return DeadLetter(id=dead_id, body=record, reason=UNREADABLE, error="", failed_at=failed_at, readable=False)


@dataclass(frozen=True, slots=True)
class Option:
    """A backend option a queue may set: a number (given as text) within bounds."""

    kind: type[int] | type[float]
    low: float
    high: float
    unit: str = ""

    def check(self, name: str, text: str) -> None:
        try:
            value = self.kind(text)
        except ValueError:
            value = math.nan
        if not self.low <= value <= self.high:  # NaN fails too
            raise ValueError(f"option {name} must be {'an integer' if self.kind is int else 'a number'}"
                             f"{' of ' + self.unit if self.unit else ''} between {self.low:g} and {self.high:g},"
                             f" got {text[:40]!r}")


# Below a second, a message would be handed to another consumer while its task still runs.
VISIBILITY_TIMEOUT = Option(float, 1.0, 7 * 86400.0, "seconds")


class Backend(ABC):
    """One queue on one broker: producer, consumer and dead-letter admin."""

    #: URL schemes this backend accepts.
    schemes: ClassVar[tuple[str, ...]] = ()
    #: URL used when a queue names the backend but no URL: only a broker inside
    #: the node itself (SQLite) has one; a network broker's URL is always given,
    #: so that no node silently uses a localhost of its own.
    default_url: ClassVar[str] = ""
    #: The options a queue of this backend may set, and their bounds.
    options_schema: ClassVar[Mapping[str, Option]] = {"visibility_timeout": VISIBILITY_TIMEOUT}
    #: Whether the queues live inside one process (memory): nodes share no such broker.
    in_process: ClassVar[bool] = False
    #: Prefixes of options passed to the broker as they are (AMQP's x- queue arguments).
    option_prefixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, queue: str, url: str, options: Mapping[str, str] | None = None,
                 *, consumer_name: str = "octobot", visibility_timeout: float = 30.0, prefetch: int = 0) -> None:
        self.queue = queue
        self.url = url
        self.options = dict(options or {})
        self.consumer_name = consumer_name
        self.visibility_timeout = visibility_timeout
        # Most messages a consumer may hold unacked (0: the backend's choice);
        # the node keeps it at the queue's concurrency so nothing is hoarded.
        self.prefetch = prefetch

    @classmethod
    def check_options(cls, options: Mapping[str, str]) -> None:
        """Raise ValueError naming the first option that is unknown or out of bounds."""
        for name, text in sorted(options.items()):
            option = cls.options_schema.get(name)
            if option is not None:
                option.check(name, text)
            elif not name.startswith(cls.option_prefixes) or name in cls.option_prefixes:
                known = ", ".join([*cls.options_schema, *(f"{p}..." for p in cls.option_prefixes)])
                raise ValueError(f"unknown option {name[:64]!r} for the {cls.schemes[0]} backend (known: {known})")

    @classmethod
    def normalize_url(cls, url: str) -> str:
        """Check ``url`` and return its canonical form; raise ValueError if it is unusable."""
        scheme = url.split("://", 1)[0]
        if "://" not in url or scheme not in cls.schemes:
            raise ValueError(f"URL {url!r} does not fit this backend (schemes: {', '.join(cls.schemes)})")
        return url

    # -- producer ---------------------------------------------------------

    def publish(self, bodies: Sequence[bytes]) -> None:
        """Append messages to the queue, in order, in as few round trips as the broker allows."""
        if bodies:
            self._publish(bodies)

    def connect(self) -> None:
        """Open the producing connection now, on the caller's thread, where the
        backend would open it lazily; BrokerUnavailable if the broker cannot be reached."""

    def publish_async(self, bodies: Sequence[bytes]) -> Future[None]:
        """``publish`` that may return before the broker answers: the future settles
        once the broker has the messages (or with why not). Calls keep their order."""
        if not bodies:
            return _settled(None)
        return self._publish_async(bodies)

    # -- consumer ---------------------------------------------------------

    def fetch(self, max_count: int, timeout: float) -> list[Delivery]:
        """Take up to ``max_count`` messages, waiting at most ``timeout`` s for the first."""
        if max_count <= 0:
            return []
        return self._fetch(max_count, timeout)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """The tasks finished: remove these messages for good."""
        if deliveries:
            self._ack(deliveries)

    def ack_and_fetch(self, acks: Sequence[Delivery], max_count: int, timeout: float) -> list[Delivery]:
        """Ack finished messages, then take up to ``max_count`` new ones: the
        consumer's hot path, in one round trip where the broker allows."""
        if not acks:
            return self.fetch(max_count, timeout)
        if max_count <= 0:
            self._ack(acks)
            return []
        return self._ack_and_fetch(acks, max_count, timeout)

    def release(self, deliveries: Sequence[Delivery]) -> None:
        """Hand unstarted messages back so any consumer may take them now."""
        if deliveries:
            self._release(deliveries)

    def retry(self, delivery: Delivery, body: bytes, delay: float) -> None:
        """Replace the message with ``body`` (its next attempt), visible after ``delay`` s."""
        self._retry(delivery, body, max(0.0, delay))

    def dead_letter(self, delivery: Delivery, reason: str, error: str = "") -> None:
        """Move the message to the queue's dead letters with why it failed."""
        self._dead_letter(delivery, encode_dead(delivery.body, reason, error))

    def set_prefetch(self, count: int) -> None:
        """The queue's concurrency changed: hold at most ``count`` unacked messages."""
        self.prefetch = count
        self._set_prefetch(count)

    def touch(self, deliveries: Sequence[Delivery]) -> None:
        """Keep long-running messages owned by this consumer (reset their visibility timer)."""
        if deliveries:
            self._touch(deliveries)

    def depth(self) -> int:
        """Messages waiting to be fetched (not counting in-flight or delayed ones)."""
        return self._depth()

    def purge(self) -> int:
        """Drop every waiting message; return how many."""
        return self._purge()

    # -- dead letters -----------------------------------------------------

    def dead_list(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        """Dead letters, oldest first: ``limit`` of them after the first ``offset``."""
        return self._dead_list(offset + limit)[offset:]

    def dead_retry(self, ids: Sequence[str] | None = None) -> int:
        """Publish dead letters again (all when ``ids`` is None); return how many."""
        return self._dead_retry(ids)

    def dead_purge(self) -> int:
        return self._dead_purge()

    def close(self) -> None:
        """Release connections; the object is unusable afterwards."""

    # -- primitives each broker implements ----------------------------------

    def _set_prefetch(self, count: int) -> None:
        """Brokers that push messages (AMQP) apply the new limit; pull-based ones need nothing."""

    def _publish_async(self, bodies: Sequence[bytes]) -> Future[None]:
        """Synchronous by default; a broker that can pipeline publishes overrides this."""
        try:
            self._publish(bodies)
        except Exception as exc:
            return _settled(exc)
        return _settled(None)

    def _ack_and_fetch(self, acks: Sequence[Delivery], max_count: int, timeout: float) -> list[Delivery]:
        """Two steps by default; a broker that can pipeline them overrides this."""
        self._ack(acks)
        return self._fetch(max_count, timeout)

    @abstractmethod
    def _publish(self, bodies: Sequence[bytes]) -> None: ...
    @abstractmethod
    def _fetch(self, max_count: int, timeout: float) -> list[Delivery]: ...
    @abstractmethod
    def _ack(self, deliveries: Sequence[Delivery]) -> None: ...
    @abstractmethod
    def _release(self, deliveries: Sequence[Delivery]) -> None: ...
    @abstractmethod
    def _retry(self, delivery: Delivery, body: bytes, delay: float) -> None: ...
    @abstractmethod
    def _dead_letter(self, delivery: Delivery, record: bytes) -> None: ...
    @abstractmethod
    def _touch(self, deliveries: Sequence[Delivery]) -> None: ...
    @abstractmethod
    def _depth(self) -> int: ...
    @abstractmethod
    def _purge(self) -> int: ...
    @abstractmethod
    def _dead_list(self, limit: int) -> list[DeadLetter]: ...
    @abstractmethod
    def _dead_retry(self, ids: Sequence[str] | None) -> int: ...
    @abstractmethod
    def _dead_purge(self) -> int: ...
