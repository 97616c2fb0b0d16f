"""SQLite backend: a durable queue in one file, for a single machine.

URLs follow SQLAlchemy: ``sqlite:///relative/path.db`` or ``sqlite:////abs/path.db``.
Several queues share a file; rows carry their queue's name. A fetched row is
claimed until ``claimed_until``; when that passes unacked, any consumer may
claim it again, which is how a dead consumer's messages come back.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from octobot.backends.base import Backend, BrokerUnavailable, DeadLetter, Delivery, decode_dead

_PREFIX = "sqlite:///"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body BLOB NOT NULL,
    available_at REAL NOT NULL,
    claimed_until REAL,
    claimed_by TEXT
);
CREATE INDEX IF NOT EXISTS messages_queue_available ON messages (queue, available_at);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT,
    record BLOB,
    at REAL
);
"""

# Rows of the queue that any consumer may take now.
_WAITING = "queue = ? AND available_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)"

# Ordered by (available_at, id), the order of the index (whose entries end with
# the rowid), so a fetch walks the index instead of sorting the backlog. That is
# publish order; a retry takes its place by the time it becomes due.
_CLAIM = f"""
UPDATE messages SET claimed_until = ?, claimed_by = ?
WHERE id IN (SELECT id FROM messages WHERE {_WAITING} ORDER BY available_at, id LIMIT ?)
RETURNING id, body
"""

# OperationalErrors that mean "try again later", not a bug in our SQL.
_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


def _path(url: str) -> str:
    path = url[len(_PREFIX):] if url.startswith(_PREFIX) else ""
    if not path or path == ":memory:":
        raise ValueError(f"SQLite URL {url!r} needs a file path: sqlite:///relative.db or sqlite:////abs.db")
    return os.path.expanduser(path)


def _blob(value: object) -> bytes:
    # Rows inserted as TEXT (e.g. from the sqlite3 shell) come back as str;
    # rows another program wrote may hold anything.
    if isinstance(value, bytes):
        return value
    return b"" if value is None else str(value).encode()


class SqliteBackend(Backend):
    """A queue in a SQLite file, shared by the threads and processes of one machine."""

    schemes = ("sqlite",)
    default_url = "sqlite:///octobot-queues.db"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._file = _path(self.url)
        # sqlite3 connections must not be shared between threads at once:
        # each thread gets its own; the list lets close() reach them all.
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @classmethod
    def normalize_url(cls, url: str) -> str:
        """The URL with an absolute path, valid from any working directory on this machine."""
        return _PREFIX + os.path.abspath(_path(super().normalize_url(url)))

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if not any(word in str(exc).lower() for word in _TRANSIENT):
                raise
            raise BrokerUnavailable(f"sqlite {self._file} unavailable: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE.
            db = sqlite3.connect(self._file, timeout=5.0, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock up front, so two
        fetchers never read the same free rows and then both claim them."""
        with self._errors():
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._errors():
            return self._connection().execute(sql, params).fetchall()

    # -- producer ---------------------------------------------------------

    def _publish(self, bodies: Sequence[bytes]) -> None:
        now = time.time()
        with self._transaction() as db:
            db.executemany("INSERT INTO messages (queue, body, available_at) VALUES (?, ?, ?)",
                           [(self.queue, body, now) for body in bodies])

    # -- consumer ---------------------------------------------------------

    def _fetch(self, max_count: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            now = time.time()
            with self._transaction() as db:
                rows = db.execute(_CLAIM, (now + self.visibility_timeout, self.consumer_name,
                                           self.queue, now, now, max_count)).fetchall()
            left = deadline - time.monotonic()
            if rows or left <= 0:
                # RETURNING gives no order guarantee.
                return [Delivery(body=_blob(body), receipt=row_id) for row_id, body in sorted(rows)]
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)

    def _ack(self, deliveries: Sequence[Delivery]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM messages WHERE id = ?", [(d.receipt,) for d in deliveries])

    def _release(self, deliveries: Sequence[Delivery]) -> None:
        with self._transaction() as db:
            db.executemany("UPDATE messages SET claimed_until = NULL, claimed_by = NULL WHERE id = ?",
                           [(d.receipt,) for d in deliveries])

    def _retry(self, delivery: Delivery, body: bytes, delay: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE messages SET body = ?, available_at = ?, claimed_until = NULL, claimed_by = NULL"
                       " WHERE id = ?", (body, time.time() + delay, delivery.receipt))

    def _dead_letter(self, delivery: Delivery, record: bytes) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO dead (queue, record, at) VALUES (?, ?, ?)", (self.queue, record, time.time()))
            db.execute("DELETE FROM messages WHERE id = ?", (delivery.receipt,))

    def _touch(self, deliveries: Sequence[Delivery]) -> None:
        until = time.time() + self.visibility_timeout
        with self._transaction() as db:
            db.executemany("UPDATE messages SET claimed_until = ? WHERE id = ?",
                           [(until, d.receipt) for d in deliveries])

    def _depth(self) -> int:
        now = time.time()
        [(count,)] = self._query(f"SELECT COUNT(*) FROM messages WHERE {_WAITING}", (self.queue, now, now))
        return int(count)

    def _purge(self) -> int:
        """Delete waiting and delayed messages; in-flight ones stay with their consumers."""
        now = time.time()
        with self._transaction() as db:
            return db.execute("DELETE FROM messages WHERE queue = ? AND (claimed_until IS NULL OR claimed_until < ?)",
                              (self.queue, now)).rowcount

    # -- dead letters -----------------------------------------------------

    def _dead_list(self, limit: int) -> list[DeadLetter]:
        rows = self._query("SELECT id, record FROM dead WHERE queue = ? ORDER BY id LIMIT ?", (self.queue, limit))
        return [decode_dead(str(dead_id), _blob(record)) for dead_id, record in rows]

    def _dead_retry(self, ids: Sequence[str] | None) -> int:
        try:
            wanted = None if ids is None else [int(i) for i in ids]
        except ValueError:
            raise ValueError(f"not dead-letter ids: {', '.join(ids or [])}") from None
        with self._transaction() as db:
            if wanted is None:
                rows = db.execute("SELECT id, record FROM dead WHERE queue = ? ORDER BY id", (self.queue,)).fetchall()
            else:
                rows = [row for dead_id in wanted for row in db.execute(
                    "SELECT id, record FROM dead WHERE queue = ? AND id = ?", (self.queue, dead_id))]
            now = time.time()
            letters = [letter for i, rec in rows if (letter := decode_dead(str(i), _blob(rec))).retriable]
            db.executemany("INSERT INTO messages (queue, body, available_at) VALUES (?, ?, ?)",
                           [(self.queue, letter.revived(), now) for letter in letters])
            db.executemany("DELETE FROM dead WHERE id = ?", [(int(letter.id),) for letter in letters])
        return len(letters)

    def _dead_purge(self) -> int:
        with self._transaction() as db:
            return db.execute("DELETE FROM dead WHERE queue = ?", (self.queue,)).rowcount

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
