"""SQLAlchemy models of the coordinator's store. Schema changes go through Alembic
revisions in ``migrations/versions``; a test checks the two agree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class QueueRow(Base):
    __tablename__ = "queues"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    backend: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    selector: Mapped[str] = mapped_column(Text, default="")
    max_retries: Mapped[int] = mapped_column(Integer)
    retry_backoff: Mapped[float] = mapped_column(Float)
    task_timeout: Mapped[float] = mapped_column(Float)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    max_message_bytes: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tasks: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # A named broker's name ("" for none): backend and URLs then come from it.
    broker: Mapped[str] = mapped_column(String(128), default="", server_default="")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class BrokerRow(Base):
    """A named broker: a default URL and, per node selector, others."""

    __tablename__ = "brokers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    backend: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    # [[selector, url], ...], tried in order.
    endpoints: Mapped[list[list[str]]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class NodeRow(Base):
    __tablename__ = "nodes"

    node_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    version: Mapped[str] = mapped_column(String(64))
    tasks: Mapped[list[str]] = mapped_column(JSON, default=list)
    registered_at: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    # NULL: not cordoned. A list: cordoned, and the queues the node may keep
    # running (those it ran when cordoned); the planner places no others.
    cordoned_queues: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class AuditRow(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text)


class CounterRow(Base):
    """Named monotonic counters; ``generation`` numbers every desired-state change."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class StatsMinuteRow(Base):
    """One minute of one stats series: a queue (dim and value empty) or a queue
    on the nodes with one label value (dim=dc, value=us-east). Histograms are
    serialized ``octobot.v1.Histogram`` messages."""

    __tablename__ = "stats_minutes"

    queue: Mapped[str] = mapped_column(String(128), primary_key=True)
    dim: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Minutes since the epoch (UTC).
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    succeeded: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    retried: Mapped[int] = mapped_column(BigInteger)
    dead_lettered: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[int] = mapped_column(BigInteger)
    backlog: Mapped[int] = mapped_column(BigInteger)
    run_time: Mapped[bytes] = mapped_column(LargeBinary)
    wait_time: Mapped[bytes] = mapped_column(LargeBinary)
    end_to_end: Mapped[bytes] = mapped_column(LargeBinary)


class TokenRow(Base):
    """A bearer token: only a SHA-256 of its secret is kept. A node credential
    (made by NodeService.Join) is bound to one node id; other tokens are not."""

    __tablename__ = "tokens"

    # The public part of the token string, to find the row without the secret.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
