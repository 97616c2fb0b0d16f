"""The coordinator's own connections to queues' brokers, for enqueueing and
dead letters.

Each broker (a URL) gets threads of its own, and every call a deadline: a
broker that accepts connections and never answers ties up its own threads
and fails its own calls with UNAVAILABLE, while calls to every other broker
(and the event loop) go on. Only what an admin declared is reached: the
queue's URL, without secret references (nodes resolve those), and SQLite
files only in the directory the operator allowed.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from octobot import backends
from octobot.backends import Backend, BrokerUnavailable
from octobot.queue_specs import Binding, binding
from octobot.coordinator.records import FailedPrecondition
from octobot.secrets import has_references, redact_url, remember_url
from octobot.v1 import queue_pb2

T = TypeVar("T")

# Seconds a broker call may take (a purge or a retry of every dead letter
# included); the broker's own socket timeouts usually end it sooner.
CALL_TIMEOUT = 30.0
# Calls one broker runs at once; more wait for a thread, within their deadline.
THREADS_PER_BROKER = 4


class Brokers:
    def __init__(self, sqlite_queue_dir: str | None, store_file: str) -> None:
        self._sqlite_dir = None if sqlite_queue_dir is None else os.path.realpath(sqlite_queue_dir)
        self._store_file = store_file
        self._lock = threading.Lock()  # the maps below, from the brokers' threads
        self._open: dict[tuple[str, str], tuple[Binding, Backend]] = {}  # by queue and URL (a broker's endpoints)
        self._threads: dict[str, ThreadPoolExecutor] = {}  # by URL

    async def call(self, spec: queue_pb2.QueueSpec, fn: Callable[[Backend], T]) -> T:
        """``fn`` on the queue's broker connection, on that broker's threads, within CALL_TIMEOUT."""
        self._check(spec)
        with self._lock:
            pool = self._threads.get(spec.url)
            if pool is None:
                pool = self._threads[spec.url] = ThreadPoolExecutor(
                    THREADS_PER_BROKER, thread_name_prefix=f"broker-{len(self._threads)}")
        running = asyncio.get_running_loop().run_in_executor(pool, lambda: fn(self._backend(spec)))
        try:
            return await asyncio.wait_for(running, CALL_TIMEOUT)
        except TimeoutError:
            # The thread stays stuck on that broker until its socket gives up; nothing else waits for it.
            raise BrokerUnavailable(f"queue {spec.name!r}: its broker at {redact_url(spec.url)} did not answer "
                                    f"within {CALL_TIMEOUT:g} s") from None

    def _check(self, spec: queue_pb2.QueueSpec) -> None:
        if has_references(spec.url):
            # Secrets are resolved on nodes only, never here.
            raise FailedPrecondition(f"queue {spec.name!r}: its URL references secrets that only nodes resolve, so the "
                                     "coordinator cannot reach its broker; use a producer or the broker where the "
                                     "secret is available")
        if spec.backend == "sqlite":
            self._check_sqlite(spec)

    def _check_sqlite(self, spec: queue_pb2.QueueSpec) -> None:
        """A sqlite URL names a file on this machine: the coordinator opens or
        makes one only in the directory the operator allowed, and never its own store."""
        where = "" if self._sqlite_dir is None else f" {self._sqlite_dir}"
        path = os.path.realpath(spec.url.removeprefix("sqlite:///"))
        if self._sqlite_dir is None or os.path.dirname(path) != self._sqlite_dir or path == self._store_file \
                or os.path.isdir(path):
            raise FailedPrecondition(f"queue {spec.name!r}: the coordinator opens SQLite queue files only in "
                                     f"--sqlite-queue-dir{where}, and never its own store")

    def _backend(self, spec: queue_pb2.QueueSpec) -> Backend:
        """The queue's connection (opened here, on the broker's thread: opening may block)."""
        remember_url(spec.url)  # its password, redacted from whatever the broker's errors say
        where = binding(spec)
        key = (spec.name, spec.url)
        with self._lock:
            cached = self._open.get(key)
            if cached is not None and cached[0] == where:
                return cached[1]
        backend = backends.open_backend(spec.backend, spec.name, spec.url, dict(spec.options))
        with self._lock:
            stale, self._open[key] = self._open.get(key), (where, backend)
        if stale is not None:
            stale[1].close()
        return backend

    async def forget(self, existing: Iterable[queue_pb2.QueueSpec]) -> None:
        """Close the connections of queues not among ``existing`` (deleted ones),
        and the threads of brokers no queue names any more."""
        specs = list(existing)
        places = {(s.name, url) for s in specs for url in (s.url, *(e.url for e in s.endpoints))}
        urls = {url for _, url in places}
        with self._lock:
            gone = [self._open.pop(key)[1] for key in list(self._open) if key not in places]
            idle = [self._threads.pop(url) for url in list(self._threads) if url not in urls]
        for backend in gone:
            await asyncio.to_thread(backend.close)
        for pool in idle:
            pool.shutdown(wait=False)

    def close(self) -> None:
        with self._lock:
            opened, self._open = list(self._open.values()), {}
            pools, self._threads = list(self._threads.values()), {}
        for _, backend in opened:
            backend.close()
        for pool in pools:
            pool.shutdown(wait=False)
