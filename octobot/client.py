"""The producer client: put tasks on queues from an application.

    with octobot.Client("redis://127.0.0.1:6379/0") as client:
        msg_id = client.enqueue("emails", "emails.send", args=["a@b.c"])
        ids = client.enqueue_many("emails", [Envelope.new("emails.send", args=[to]) for to in rcpts])
        client.enqueue("billing", "billing.charge", args=[42], wait=True)  # returns once the broker has it

``enqueue`` returns at once and the broker's confirmation is tracked in the
background (octobot/outbox.py): a message the broker did not take raises
NotConfirmed on a later call, on ``flush()`` or on ``close()``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from octobot.backends import Backend, BrokerUnavailable, backend_class, backend_for_url, open_backend
from octobot.envelope import Envelope
from octobot.outbox import Outbox
from octobot.secrets import normalized, resolve


class Client:
    """Enqueues tasks on one broker; safe to share between threads.

    The backend is chosen from the URL scheme unless ``backend`` names it.
    The URL may take its password from ``${env:NAME}`` or ``${file:/path}``,
    read when a queue's connection opens. One backend object (and its
    connections) is kept per queue and reused.

    Messages are published in the background, in batches; ``wait=True`` makes
    a call return only once the broker confirmed its messages. The first call
    for a queue opens its connection (on the caller's thread, within the
    broker's connect timeout). Close the client (or use it as a context
    manager) to send what is still waiting.
    """

    def __init__(self, url: str, backend: str | None = None, options: Mapping[str, str] | None = None) -> None:
        self.backend_name = backend or backend_for_url(url)
        self.url = normalized(url, backend_class(self.backend_name).normalize_url)
        self.options = dict(options or {})
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        self._outbox = Outbox(lambda queue, bodies: self._backend(queue).publish_async(bodies))

    def enqueue(self, queue: str, task: str, args: Sequence[Any] | None = None,
                kwargs: Mapping[str, Any] | None = None, max_retries: int | None = None,
                wait: bool = False) -> str:
        """Put one task on ``queue``; return its message id.

        With ``wait``, return only once the broker confirmed it (NotConfirmed if it did not).
        """
        envelope = Envelope.new(task, list(args or []), dict(kwargs or {}), max_retries)
        self._put(queue, [envelope.id], [envelope.encode()], wait)
        return envelope.id

    def enqueue_many(self, queue: str, envelopes: Iterable[Envelope], wait: bool = False) -> list[str]:
        """Put several tasks on ``queue``, in order, published in batches; return their ids."""
        complete = [envelope.completed() for envelope in envelopes]
        ids = [envelope.id for envelope in complete]
        self._put(queue, ids, [envelope.encode() for envelope in complete], wait)
        return ids

    def _put(self, queue: str, ids: list[str], bodies: list[bytes], wait: bool) -> None:
        if queue not in self._backends:
            self._backend(queue)  # connects on this thread (see _backend)
        self._outbox.put(queue, ids, bodies, wait)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every message enqueued so far is confirmed by the broker; raise
        NotConfirmed naming those that were not, TimeoutError if ``timeout`` passes first."""
        self._outbox.flush(timeout)

    def depth(self, queue: str) -> int:
        """Messages waiting on ``queue``: lets a producer apply backpressure."""
        return self._backend(queue).depth()

    def _backend(self, queue: str) -> Backend:
        with self._lock:
            backend = self._backends.get(queue)
            if backend is None:
                backend = open_backend(self.backend_name, queue, resolve(self.url), self.options)
                self._backends[queue] = backend
                try:
                    # Here rather than on the publishing thread: a connection's many round trips
                    # would each wait for the GIL there while the producer's loop holds it.
                    backend.connect()
                except BrokerUnavailable:
                    pass  # the publishing thread tries again, and says so if it cannot
            return backend

    def close(self) -> None:
        """Send what is waiting (NotConfirmed for what the broker did not take), then disconnect."""
        try:
            self._outbox.close()
        finally:
            with self._lock:
                for backend in self._backends.values():
                    backend.close()
                self._backends.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
