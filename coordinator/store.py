"""The coordinator's store: queues, nodes, the generation counter, the audit
log and 1 minute stats rollups, in SQLite (embedded default, WAL) or PostgreSQL, behind one class.

    store = Store.open("sqlite:///octobot.db")   # runs Alembic migrations
    spec = store.create_queue(spec, actor="127.0.0.1")

Every write is one transaction; queue changes bump the generation in the same
transaction, so a generation always names one consistent desired state. ORM
rows never leave this module: callers get protobuf messages and dataclasses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, func, select, tuple_, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from octobot import queue_specs
from octobot.coordinator.models import AuditRow, BrokerRow, CounterRow, NodeRow, QueueRow, StatsMinuteRow, TokenRow
from octobot.coordinator.planner import Placeable, runs_on
from octobot.coordinator.records import AlreadyExists, FailedPrecondition, NodeRecord, NotFound, StatsMinute, TooMany
from octobot.coordinator.tokens import MAX_TOKENS, ROLE_NAMES, ROLES_BY_NAME, TokenRecord
from octobot.coordinator.stats.bucket_sums import sum_buckets
from octobot.histogram import DEFAULT_ACCURACY
from octobot.outcomes import OUTCOMES
from octobot.secrets import redact_text
from octobot.coordinator.store_file import StoreDown, StoreFile, StoreFull
from octobot.internal.v1 import sample_columns_pb2
from octobot.v1 import admin_pb2, queue_pb2, stats_pb2

MIGRATIONS = Path(__file__).with_name("migrations")

# QueueSpec fields the store keeps as columns (everything but timestamps).
QUEUE_FIELDS = queue_specs.UPDATABLE


def outage(exc: BaseException) -> StoreDown | None:
    """The StoreDown an exception from the database means, if it means one."""
    if isinstance(exc, StoreDown):
        return exc
    if not isinstance(exc, DBAPIError):
        return None
    first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    if "disk is full" in first or "No space left" in first or getattr(exc.orig, "sqlstate", None) == "53100":
        return StoreFull(f"the store is full: {first}")
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return StoreDown(f"the store is unavailable: {first}")
    return None


STATS_HISTOGRAMS = ("run_time", "wait_time", "end_to_end")


def _merged_histogram(a: bytes, b: bytes) -> bytes:
    """Two serialized histograms (of the same accuracy) as one."""
    both = sample_columns_pb2.HistogramColumns.FromString(a + b)
    indexes, counts = sum_buckets(both.indexes, both.counts)
    return stats_pb2.Histogram(relative_accuracy=max(both.relative_accuracy, default=DEFAULT_ACCURACY),
                               indexes=indexes, counts=counts, zero_count=sum(both.zero_count),
                               sum=sum(both.sum)).SerializeToString()


def normalize_db_url(url: str) -> str:
    """Accept plain ``postgresql://`` and pick the psycopg 3 driver for it."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _engine(url: str) -> Engine:
    url = normalize_db_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers work while a writer commits.
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5)


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest Alembic revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _queue_to_proto(row: QueueRow, brokers: dict[str, BrokerRow] | None = None) -> queue_pb2.QueueSpec:
    """The queue as stored or, given the ``brokers``, with its named broker's URLs filled in."""
    spec = queue_pb2.QueueSpec(
        name=row.name, backend=row.backend, url=row.url, priority=row.priority,
        concurrency=row.concurrency, selector=row.selector, max_retries=row.max_retries,
        retry_backoff=row.retry_backoff, task_timeout=row.task_timeout, paused=row.paused,
        max_message_bytes=row.max_message_bytes, options=row.options or {}, tasks=row.tasks or [],
        broker=row.broker)
    spec.created_at.FromNanoseconds(int(row.created_at * 1e9))
    spec.updated_at.FromNanoseconds(int(row.updated_at * 1e9))
    broker = None if brokers is None else brokers.get(row.broker)
    if broker is not None:
        spec.url = broker.url
        spec.endpoints.extend(queue_pb2.Endpoint(selector=s, url=u) for s, u in broker.endpoints)
    return spec


def _broker_to_proto(row: BrokerRow) -> queue_pb2.Broker:
    broker = queue_pb2.Broker(name=row.name, backend=row.backend, url=row.url,
                              endpoints=[queue_pb2.Endpoint(selector=s, url=u) for s, u in row.endpoints])
    broker.created_at.FromNanoseconds(int(row.created_at * 1e9))
    broker.updated_at.FromNanoseconds(int(row.updated_at * 1e9))
    return broker


def _brokers(session: Session) -> dict[str, BrokerRow]:
    return {row.name: row for row in session.scalars(select(BrokerRow))}


def _queue_values(spec: queue_pb2.QueueSpec) -> dict[str, Any]:
    values = {f: getattr(spec, f) for f in QUEUE_FIELDS}
    values["options"] = dict(spec.options)
    values["tasks"] = list(spec.tasks)
    return values


def _broker_values(broker: queue_pb2.Broker) -> dict[str, Any]:
    return {"backend": broker.backend, "url": broker.url, "endpoints": [[e.selector, e.url] for e in broker.endpoints]}


def _node_record(row: NodeRow) -> NodeRecord:
    return NodeRecord(node_id=row.node_id, hostname=row.hostname, labels=dict(row.labels or {}),
                      version=row.version, tasks=list(row.tasks or []),
                      registered_at=row.registered_at, last_seen=row.last_seen, draining=row.draining,
                      cordoned_queues=None if row.cordoned_queues is None else list(row.cordoned_queues))


def _token_record(row: TokenRow) -> TokenRecord:
    return TokenRecord(id=row.id, name=row.name, role=ROLES_BY_NAME[row.role], secret_sha256=row.secret_sha256,
                       created_at=row.created_at, expires_at=row.expires_at, last_used_at=row.last_used_at,
                       node_id=row.node_id)


class Store:
    """Durable desired state. Thread-safe: one session per call."""

    def __init__(self, engine: Engine, file: StoreFile | None = None) -> None:
        self.engine = engine
        self.file = file
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Transactions done: tells a call that reached the database from one
        # that had nothing to do (which proves nothing about an outage's end).
        self.transactions = 0

    @classmethod
    def open(cls, url: str, new_store: bool = False) -> Store:
        """Open (creating or upgrading) the store; WrongStore for a SQLite file
        that is missing or another where a store was made, unless ``new_store``."""
        file = StoreFile.of(url)
        if file is not None:
            file.admit(new_store)
        engine = _engine(url)
        migrate(engine)
        if file is not None:
            file.mark(engine)
        return cls(engine, file)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        """One transaction. On a store file gone from its path every call,
        reads too, is refused (StoreDown), like an outage: what it would
        write would be lost, and what it reads is no longer the store. Checked
        after the commit too, so a change that raced the deletion is not
        reported done."""
        if self.file is not None:
            self.file.check()
        with self._sessions.begin() as session:
            yield session
        if self.file is not None:
            self.file.check()
        self.transactions += 1

    @staticmethod
    def _bump_generation(session: Session) -> int:
        row = session.get_one(CounterRow, "generation", with_for_update=True)
        row.value += 1
        return row.value

    @staticmethod
    def _generation(session: Session) -> int:
        return session.get_one(CounterRow, "generation").value

    @staticmethod
    def _audit(session: Session, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        # Queue URLs are audited without their passwords.
        session.add(AuditRow(at=time.time(), actor=actor, action=action, target=target,
                             detail=redact_text(json.dumps(detail, sort_keys=True, default=str))))

    # Queue changes within a transaction; the caller bumps the generation once.

    @staticmethod
    def _check_broker(session: Session, name: str, backend: str) -> None:
        """A queue names an existing broker of its backend (checked in the transaction that stores it)."""
        if not name:
            return
        # Shared-locked (PostgreSQL): a broker being deleted waits, then sees this queue use it.
        row = session.get(BrokerRow, name, with_for_update={"read": True})
        if row is None:
            raise FailedPrecondition(f"broker {name!r} not found: add it first (octoctl broker add)")
        if row.backend != backend:
            raise FailedPrecondition(f"broker {name!r} has backend {row.backend}, not {backend}")

    def _insert_queue(self, session: Session, spec: queue_pb2.QueueSpec, actor: str) -> QueueRow:
        self._check_broker(session, spec.broker, spec.backend)
        now = time.time()
        row = QueueRow(name=spec.name, created_at=now, updated_at=now, **_queue_values(spec))
        session.add(row)
        session.flush()
        self._audit(session, actor, "queue.create", spec.name, _queue_values(spec))
        return row

    def _change_queue(self, session: Session, row: QueueRow, changes: dict[str, Any], actor: str) -> None:
        self._check_broker(session, changes.get("broker", row.broker), changes.get("backend", row.backend))
        before = {k: getattr(row, k) for k in changes}
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = time.time()
        self._audit(session, actor, "queue.update", row.name, {"before": before, "after": changes})

    def _delete_queue(self, session: Session, row: QueueRow, actor: str) -> None:
        """Delete a queue, and take it off cordoned nodes' lists: a queue created
        again under its name is a new queue, which a cordoned node does not get."""
        session.delete(row)
        for node in session.scalars(select(NodeRow).where(NodeRow.cordoned_queues.is_not(None))):
            if row.name in (node.cordoned_queues or []):
                node.cordoned_queues = [n for n in node.cordoned_queues if n != row.name]
        self._audit(session, actor, "queue.delete", row.name, {})

    # -- queues -----------------------------------------------------------

    def snapshot(self) -> tuple[list[queue_pb2.QueueSpec], int]:
        """Every queue and the generation they make up, read in one transaction."""
        with self._tx() as session:
            generation = session.get_one(CounterRow, "generation").value
            brokers = _brokers(session)
            queues = [_queue_to_proto(r, brokers) for r in session.scalars(select(QueueRow).order_by(QueueRow.name))]
            return queues, generation

    def create_queue(self, spec: queue_pb2.QueueSpec, actor: str) -> tuple[queue_pb2.QueueSpec, int]:
        """Insert a queue; return it and the new generation."""
        try:
            with self._tx() as session:
                if session.get(QueueRow, spec.name) is not None:
                    raise AlreadyExists(f"queue {spec.name!r} already exists")
                row = self._insert_queue(session, spec, actor)
                return _queue_to_proto(row, _brokers(session)), self._bump_generation(session)
        except IntegrityError:
            # Two creators raced past the check above.
            raise AlreadyExists(f"queue {spec.name!r} already exists") from None

    def update_queue(self, name: str, changes: dict[str, Any], actor: str) -> tuple[queue_pb2.QueueSpec, int]:
        """Set the given QueueSpec fields; return the queue and the new generation."""
        with self._tx() as session:
            row = session.get(QueueRow, name, with_for_update=True)
            if row is None:
                raise NotFound(f"queue {name!r} not found")
            self._change_queue(session, row, changes, actor)
            return _queue_to_proto(row, _brokers(session)), self._bump_generation(session)

    def delete_queue(self, name: str, actor: str) -> int:
        with self._tx() as session:
            row = session.get(QueueRow, name, with_for_update=True)
            if row is None:
                raise NotFound(f"queue {name!r} not found")
            self._delete_queue(session, row, actor)
            return self._bump_generation(session)

    def apply_queues(self, desired: list[queue_pb2.QueueSpec], prune: bool, dry_run: bool,
                     actor: str) -> tuple[list[admin_pb2.QueueChange], int]:
        """Make the queues match ``desired`` (validated, complete specs) in one
        transaction and one generation; return the changes and that generation
        (0 when nothing changed or on a dry run). Each change is audited as a
        queue.create, queue.update or queue.delete."""
        try:
            with self._tx() as session:
                # Lock the counter first: concurrent applies then diff one after the other.
                session.get_one(CounterRow, "generation", with_for_update=True)
                rows = {r.name: r for r in session.scalars(select(QueueRow).order_by(QueueRow.name).with_for_update())}
                changes = queue_specs.diff([_queue_to_proto(r) for r in rows.values()], desired, prune)
                if dry_run or not changes:
                    return changes, 0
                for change in changes:
                    if change.kind == admin_pb2.QUEUE_CHANGE_KIND_CREATE:
                        change.after.CopyFrom(_queue_to_proto(self._insert_queue(session, change.after, actor)))
                    elif change.kind == admin_pb2.QUEUE_CHANGE_KIND_UPDATE:
                        values = _queue_values(change.after)
                        row = rows[change.name]
                        self._change_queue(session, row, {f: values[f] for f in change.fields}, actor)
                        change.after.CopyFrom(_queue_to_proto(row))
                    else:
                        self._delete_queue(session, rows[change.name], actor)
                return changes, self._bump_generation(session)
        except IntegrityError:
            # A queue created by someone else between our read and our insert.
            raise AlreadyExists("a queue being created was created concurrently; apply again") from None

    def get_queue(self, name: str) -> queue_pb2.QueueSpec:
        with self._tx() as session:
            row = session.get(QueueRow, name)
            if row is None:
                raise NotFound(f"queue {name!r} not found")
            return _queue_to_proto(row, _brokers(session))

    def list_queues(self) -> list[queue_pb2.QueueSpec]:
        return self.snapshot()[0]

    # -- brokers ----------------------------------------------------------

    def create_broker(self, broker: queue_pb2.Broker, actor: str) -> queue_pb2.Broker:
        try:
            with self._tx() as session:
                if session.get(BrokerRow, broker.name) is not None:
                    raise AlreadyExists(f"broker {broker.name!r} already exists")
                if session.scalar(select(func.count()).select_from(BrokerRow)) >= queue_specs.MAX_BROKERS:
                    raise TooMany(f"there are {queue_specs.MAX_BROKERS} brokers already: remove some first")
                now = time.time()
                row = BrokerRow(name=broker.name, backend=broker.backend, url=broker.url,
                                endpoints=[[e.selector, e.url] for e in broker.endpoints], created_at=now, updated_at=now)
                session.add(row)
                session.flush()
                self._audit(session, actor, "broker.create", broker.name, _broker_values(broker))
                return _broker_to_proto(row)
        except IntegrityError:
            raise AlreadyExists(f"broker {broker.name!r} already exists") from None

    def update_broker(self, broker: queue_pb2.Broker, actor: str) -> tuple[queue_pb2.Broker, int]:
        """Replace a broker's URLs; return it and the generation (bumped: its queues' nodes get the new URLs)."""
        with self._tx() as session:
            row = session.get(BrokerRow, broker.name, with_for_update=True)
            if row is None:
                raise NotFound(f"broker {broker.name!r} not found")
            before = _broker_values(_broker_to_proto(row))
            row.url, row.endpoints = broker.url, [[e.selector, e.url] for e in broker.endpoints]
            row.updated_at = time.time()
            self._audit(session, actor, "broker.update", broker.name, {"before": before, "after": _broker_values(broker)})
            return _broker_to_proto(row), self._bump_generation(session)

    def delete_broker(self, name: str, actor: str) -> None:
        with self._tx() as session:
            row = session.get(BrokerRow, name, with_for_update=True)
            if row is None:
                raise NotFound(f"broker {name!r} not found")
            users = self._broker_queues(session, name)
            if users:
                raise FailedPrecondition(f"broker {name!r} is used by {len(users)} queue(s) ({', '.join(users[:5])}): "
                                         "move or delete them first")
            session.delete(row)
            self._audit(session, actor, "broker.delete", name, {})

    def get_broker(self, name: str) -> tuple[queue_pb2.Broker, list[str]]:
        """A broker and the names of the queues on it."""
        with self._tx() as session:
            row = session.get(BrokerRow, name)
            if row is None:
                raise NotFound(f"broker {name!r} not found")
            return _broker_to_proto(row), self._broker_queues(session, name)

    def list_brokers(self) -> list[queue_pb2.Broker]:
        with self._tx() as session:
            return [_broker_to_proto(r) for r in session.scalars(select(BrokerRow).order_by(BrokerRow.name))]

    @staticmethod
    def _broker_queues(session: Session, name: str) -> list[str]:
        return list(session.scalars(select(QueueRow.name).where(QueueRow.broker == name).order_by(QueueRow.name)))

    # -- nodes ------------------------------------------------------------

    def register_node(self, node: NodeRecord) -> NodeRecord:
        """Insert or refresh a node on Hello; keeps its registration time, drain flag and cordon."""
        now = time.time()
        with self._tx() as session:
            row = session.get(NodeRow, node.node_id)
            if row is None:
                row = NodeRow(node_id=node.node_id, registered_at=now, draining=False)
                session.add(row)
            row.hostname, row.labels, row.version = node.hostname, node.labels, node.version
            row.tasks, row.last_seen = node.tasks, now
            session.flush()
            return _node_record(row)

    def touch_nodes(self, last_seen: dict[str, float]) -> None:
        """Persist last-seen times in one transaction (called periodically, not per heartbeat)."""
        if not last_seen:
            return
        with self._tx() as session:
            known = set(session.scalars(select(NodeRow.node_id).where(NodeRow.node_id.in_(last_seen))))
            # One executemany, not an ORM object per node: 1,000 nodes every few seconds.
            rows = [{"node_id": n, "last_seen": t} for n, t in last_seen.items() if n in known]
            session.execute(update(NodeRow), rows)

    @staticmethod
    def _node_row(session: Session, node_id: str) -> NodeRow:
        row = session.get(NodeRow, node_id, with_for_update=True)
        if row is None:
            raise NotFound(f"node {node_id!r} not found")
        return row

    def set_draining(self, node_id: str, draining: bool, actor: str) -> tuple[NodeRecord, int]:
        with self._tx() as session:
            row = self._node_row(session, node_id)
            row.draining = draining
            generation = self._bump_generation(session)
            self._audit(session, actor, "node.drain" if draining else "node.undrain", node_id, {})
            return _node_record(row), generation

    def cordon_node(self, node_id: str, actor: str) -> tuple[NodeRecord, int]:
        """Cordon a node: it keeps the queues the planner gives it now and gets no
        new ones. Cordoning a cordoned node changes nothing."""
        with self._tx() as session:
            row = self._node_row(session, node_id)
            if row.cordoned_queues is not None:
                return _node_record(row), self._generation(session)
            queues = [_queue_to_proto(q) for q in session.scalars(select(QueueRow).order_by(QueueRow.name))]
            node = Placeable(row.labels or {}, frozenset(row.tasks or []), row.draining)
            row.cordoned_queues = [q.name for q in queues if runs_on(q, node)]
            self._audit(session, actor, "node.cordon", node_id, {"keeps": row.cordoned_queues})
            return _node_record(row), self._bump_generation(session)

    def uncordon_node(self, node_id: str, actor: str) -> tuple[NodeRecord, int]:
        """End a node's cordon and its drain: it gets every queue its labels select."""
        with self._tx() as session:
            row = self._node_row(session, node_id)
            if row.cordoned_queues is None and not row.draining:
                return _node_record(row), self._generation(session)
            self._audit(session, actor, "node.uncordon", node_id,
                        {"was_cordoned": row.cordoned_queues is not None, "was_draining": row.draining})
            row.cordoned_queues, row.draining = None, False
            return _node_record(row), self._bump_generation(session)

    def forget_node(self, node_id: str, actor: str) -> None:
        """Delete a node's record and its credential (the caller checks it is
        down): the id may join again."""
        with self._tx() as session:
            row = self._node_row(session, node_id)
            self._audit(session, actor, "node.forget", node_id, {"hostname": row.hostname, "labels": row.labels})
            session.delete(row)
            session.execute(delete(TokenRow).where(TokenRow.node_id == node_id))

    def get_node(self, node_id: str) -> NodeRecord:
        with self._tx() as session:
            row = session.get(NodeRow, node_id)
            if row is None:
                raise NotFound(f"node {node_id!r} not found")
            return _node_record(row)

    def node_labels(self) -> dict[str, dict[str, str]]:
        """Every registered node's labels: what a scrape needs, without building records."""
        with self._tx() as session:
            return {node_id: labels or {} for node_id, labels in session.execute(select(NodeRow.node_id, NodeRow.labels))}

    def list_nodes(self) -> list[NodeRecord]:
        with self._tx() as session:
            return [_node_record(r) for r in session.scalars(select(NodeRow).order_by(NodeRow.node_id))]

    # -- tokens -----------------------------------------------------------

    def create_token(self, record: TokenRecord, actor: str) -> None:
        """Store a token; AlreadyExists when its name (or, for a node
        credential, its node id) is taken."""
        try:
            with self._tx() as session:
                if session.scalar(select(TokenRow.id).where(TokenRow.name == record.name)) is not None:
                    raise AlreadyExists(f"token {record.name!r} already exists")
                if record.node_id is not None and (
                        session.scalar(select(TokenRow.id).where(TokenRow.node_id == record.node_id)) is not None
                        or session.get(NodeRow, record.node_id) is not None):
                    # A registered id belongs to a node already (perhaps one with a certificate).
                    raise AlreadyExists(f"node {record.node_id!r} is already registered: `octoctl node forget` "
                                        "it first (once it is down)")
                if session.scalar(select(func.count()).select_from(TokenRow)) >= MAX_TOKENS:
                    raise TooMany(f"there are {MAX_TOKENS} tokens already: revoke some first")
                session.add(TokenRow(id=record.id, name=record.name, role=ROLE_NAMES[record.role],
                                     secret_sha256=record.secret_sha256, created_at=record.created_at,
                                     expires_at=record.expires_at, node_id=record.node_id))
                self._audit(session, actor, "token.create", record.name,
                            {"role": ROLE_NAMES[record.role], "expires_at": record.expires_at,
                             "node_id": record.node_id})
        except IntegrityError:
            raise AlreadyExists(f"token {record.name!r} already exists") from None

    def revoke_token(self, name: str, actor: str) -> TokenRecord:
        with self._tx() as session:
            row = session.scalar(select(TokenRow).where(TokenRow.name == name).with_for_update())
            if row is None:
                raise NotFound(f"token {name!r} not found")
            session.delete(row)
            self._audit(session, actor, "token.revoke", name, {"role": row.role})
            return _token_record(row)

    def list_tokens(self) -> list[TokenRecord]:
        with self._tx() as session:
            return [_token_record(r) for r in session.scalars(select(TokenRow).order_by(TokenRow.name))]

    def touch_tokens(self, last_used: dict[str, float]) -> None:
        """Persist tokens' last-use times (periodically, not per call)."""
        if not last_used:
            return
        with self._tx() as session:
            known = set(session.scalars(select(TokenRow.id).where(TokenRow.id.in_(last_used))))
            session.execute(update(TokenRow), [{"id": i, "last_used_at": t} for i, t in last_used.items() if i in known])

    # -- stats rollups ----------------------------------------------------

    def merge_stats_minutes(self, deltas: list[StatsMinute]) -> None:
        """Add each delta to its minute's row (inserted when new), in one transaction:
        a minute may arrive in parts (flushes, late samples, a restart)."""
        if not deltas:
            return
        with self._tx() as session:
            keys = [(d.queue, d.dim, d.value, d.minute) for d in deltas]
            cols = (StatsMinuteRow.queue, StatsMinuteRow.dim, StatsMinuteRow.value, StatsMinuteRow.minute)
            rows = {(r.queue, r.dim, r.value, r.minute): r for r in session.scalars(
                select(StatsMinuteRow).where(tuple_(*cols).in_(keys)).with_for_update())}
            for key, d in zip(keys, deltas):
                row = rows.get(key)
                if row is None:
                    rows[key] = row = StatsMinuteRow(queue=d.queue, dim=d.dim, value=d.value, minute=d.minute,
                                                     backlog=d.backlog, **{c: getattr(d, c) for c in OUTCOMES},
                                                     **{h: getattr(d, h) for h in STATS_HISTOGRAMS})
                    session.add(row)
                    continue
                for c in OUTCOMES:
                    setattr(row, c, getattr(row, c) + getattr(d, c))
                row.backlog = max(row.backlog, d.backlog)
                for h in STATS_HISTOGRAMS:
                    setattr(row, h, _merged_histogram(getattr(row, h), getattr(d, h)))

    def stats_minutes(self, dim: str, first: int, last: int, queue: str | None = None) -> list[StatsMinute]:
        """Rollups of one dimension ("" for queue totals) for minutes first..last."""
        query = select(StatsMinuteRow).where(StatsMinuteRow.dim == dim, StatsMinuteRow.minute >= first,
                                             StatsMinuteRow.minute <= last)
        if queue is not None:
            query = query.where(StatsMinuteRow.queue == queue)
        with self._tx() as session:
            return [StatsMinute(queue=r.queue, dim=r.dim, value=r.value, minute=r.minute, backlog=r.backlog,
                                **{c: getattr(r, c) for c in OUTCOMES},
                                **{h: getattr(r, h) for h in STATS_HISTOGRAMS})
                    for r in session.scalars(query.order_by(StatsMinuteRow.minute))]

    def prune_stats_minutes(self, before: int) -> int:
        """Delete rollups older than minute ``before``; returns how many."""
        with self._tx() as session:
            return session.execute(delete(StatsMinuteRow).where(StatsMinuteRow.minute < before)).rowcount

    # -- audit ------------------------------------------------------------

    def record(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        """Audit an operator action that changes the brokers, not the desired state."""
        with self._tx() as session:
            self._audit(session, actor, action, target, detail)

    def list_audit(self, limit: int) -> list[admin_pb2.AuditEntry]:
        with self._tx() as session:
            rows = session.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))
            entries = []
            for r in rows:
                # Redacted again: entries written before redaction existed may hold passwords.
                entry = admin_pb2.AuditEntry(id=r.id, actor=r.actor, action=r.action, target=r.target,
                                             detail=redact_text(r.detail))
                entry.at.FromNanoseconds(int(r.at * 1e9))
                entries.append(entry)
            return entries
