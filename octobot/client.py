"""The producer client: put tasks on queues from an application.

    with octobot.Client("redis://127.0.0.1:6379/0") as client:
        msg_id = client.enqueue("emails", "emails.send", args=["a@b.c"])
        ids = client.enqueue_many("emails", [Envelope.new("emails.send", args=[to]) for to in rcpts])
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from octobot.backends import Backend, backend_class, backend_for_url, open_backend
from octobot.envelope import Envelope
from octobot.secrets import normalized, resolve


class Client:
    """Enqueues tasks on one broker; safe to share between threads.

    The backend is chosen from the URL scheme unless ``backend`` names it.
    The URL may take its password from ``${env:NAME}`` or ``${file:/path}``,
    read when a queue's connection opens. One backend object (and its
    connections) is kept per queue and reused.
    """

    def __init__(self, url: str, backend: str | None = None, options: Mapping[str, str] | None = None) -> None:
        self.backend_name = backend or backend_for_url(url)
        self.url = normalized(url, backend_class(self.backend_name).normalize_url)
        self.options = dict(options or {})
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()

    def enqueue(self, queue: str, task: str, args: Sequence[Any] | None = None,
                kwargs: Mapping[str, Any] | None = None, max_retries: int | None = None) -> str:
        """Put one task on ``queue``; return its message id."""
        envelope = Envelope.new(task, list(args or []), dict(kwargs or {}), max_retries)
        return self.enqueue_many(queue, [envelope])[0]

    def enqueue_many(self, queue: str, envelopes: Iterable[Envelope]) -> list[str]:
        """Put several tasks on ``queue`` in one batch, in order; return their ids."""
        complete = [envelope.completed() for envelope in envelopes]
        self._backend(queue).publish([envelope.encode() for envelope in complete])
        return [envelope.id for envelope in complete]

    def depth(self, queue: str) -> int:
        """Messages waiting on ``queue``: lets a producer apply backpressure."""
        return self._backend(queue).depth()

    def _backend(self, queue: str) -> Backend:
        with self._lock:
            backend = self._backends.get(queue)
            if backend is None:
                backend = open_backend(self.backend_name, queue, resolve(self.url), self.options)
                self._backends[queue] = backend
            return backend

    def close(self) -> None:
        with self._lock:
            for backend in self._backends.values():
                backend.close()
            self._backends.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
