"""The coordinator's store on SQLite and on real PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from octobot.coordinator.models import Base
from octobot.coordinator.records import AlreadyExists, NodeRecord, NotFound
from octobot.coordinator.store import Store
from octobot.v1 import queue_pb2


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


def spec(name: str = "emails", **kwargs: object) -> queue_pb2.QueueSpec:
    values: dict[str, object] = {"backend": "redis", "url": "redis://127.0.0.1:6379/0", "priority": 5,
                                 "concurrency": 4, "selector": "dc=us-east", "max_retries": 3,
                                 "retry_backoff": 1.5, "task_timeout": 30.0, "max_message_bytes": 1 << 20,
                                 "options": {"a": "1"}}
    values.update(kwargs)
    return queue_pb2.QueueSpec(name=name, **values)  # type: ignore[arg-type]


def node(node_id: str = "n1", **kwargs: object) -> NodeRecord:
    values: dict[str, object] = {"hostname": "host-1", "labels": {"dc": "us-east"}, "version": "1.0",
                                 "tasks": ["a.b"]}
    values.update(kwargs)
    return NodeRecord(node_id=node_id, **values)  # type: ignore[arg-type]


def generation_of(store: Store) -> int:
    queues, generation = store.snapshot()
    assert queues == store.list_queues(), "snapshot and list_queues agree"
    return generation


def audit(store: Store) -> list[tuple[str, str, str, dict]]:
    """(actor, action, target, detail), oldest first."""
    return [(e.actor, e.action, e.target, json.loads(e.detail)) for e in reversed(store.list_audit(1000))]


# -- queues -------------------------------------------------------------------

def test_empty_store(store: Store) -> None:
    assert generation_of(store) == 0
    assert store.list_queues() == []
    assert store.list_nodes() == []
    assert store.list_audit(10) == []


def test_create_and_get_queue(store: Store) -> None:
    before = time.time()
    created, generation = store.create_queue(spec(), actor="tester")
    assert generation == 1 == generation_of(store)
    got = store.get_queue("emails")
    assert got == created
    assert store.snapshot() == ([created], 1)
    for field in ("backend", "url", "priority", "concurrency", "selector", "max_retries", "retry_backoff",
                  "task_timeout", "paused", "max_message_bytes"):
        assert getattr(got, field) == getattr(spec(), field), field
    assert dict(got.options) == {"a": "1"}
    assert before - 1 <= got.created_at.ToNanoseconds() / 1e9 <= time.time() + 1
    assert got.created_at == got.updated_at


def test_list_queues_sorted_by_name(store: Store) -> None:
    for name in ("zeta", "alpha", "mid"):
        store.create_queue(spec(name), actor="t")
    assert [q.name for q in store.list_queues()] == ["alpha", "mid", "zeta"]


def test_create_twice_raises_already_exists(store: Store) -> None:
    store.create_queue(spec(), actor="t")
    with pytest.raises(AlreadyExists, match="emails"):
        store.create_queue(spec(priority=9), actor="t")
    assert generation_of(store) == 1, "a refused create does not bump the generation"
    assert store.get_queue("emails").priority == 5
    assert [a[1] for a in audit(store)] == ["queue.create"]


def test_update_queue(store: Store) -> None:
    created, _ = store.create_queue(spec(), actor="t")
    time.sleep(0.01)
    updated, generation = store.update_queue("emails", {"priority": 9, "paused": True, "options": {"b": "2"}},
                                             actor="alice")
    assert generation == 2
    assert (updated.priority, updated.paused, dict(updated.options)) == (9, True, {"b": "2"})
    assert updated.concurrency == 4, "fields not named stay as they were"
    assert updated.created_at == created.created_at
    assert updated.updated_at.ToNanoseconds() > created.updated_at.ToNanoseconds()
    assert store.get_queue("emails") == updated


def test_delete_queue(store: Store) -> None:
    store.create_queue(spec("a"), actor="t")
    store.create_queue(spec("b"), actor="t")
    assert store.delete_queue("a", actor="t") == 3
    assert [q.name for q in store.list_queues()] == ["b"]
    with pytest.raises(NotFound):
        store.get_queue("a")
    # The name is free again.
    store.create_queue(spec("a"), actor="t")
    assert generation_of(store) == 4


@pytest.mark.parametrize("operation", ["get", "update", "delete"])
def test_missing_queue_raises_not_found(store: Store, operation: str) -> None:
    store.create_queue(spec("present"), actor="t")
    with pytest.raises(NotFound, match="missing"):
        if operation == "get":
            store.get_queue("missing")
        elif operation == "update":
            store.update_queue("missing", {"priority": 2}, actor="t")
        else:
            store.delete_queue("missing", actor="t")
    assert generation_of(store) == 1, "a failed change does not bump the generation"
    assert len(store.list_audit(100)) == 1


def test_every_change_bumps_generation_once_and_is_audited(store: Store) -> None:
    gens = [generation_of(store)]
    gens.append(store.create_queue(spec(), actor="alice")[1])
    gens.append(store.update_queue("emails", {"concurrency": 8}, actor="bob")[1])
    store.register_node(node("n1"))
    gens.append(store.set_draining("n1", True, actor="carol")[1])
    gens.append(store.set_draining("n1", False, actor="carol")[1])
    gens.append(store.delete_queue("emails", actor="dave"))
    assert gens == [0, 1, 2, 3, 4, 5]
    assert generation_of(store) == 5
    entries = audit(store)
    assert [(a, act, t) for a, act, t, _ in entries] == [
        ("alice", "queue.create", "emails"),
        ("bob", "queue.update", "emails"),
        ("carol", "node.drain", "n1"),
        ("carol", "node.undrain", "n1"),
        ("dave", "queue.delete", "emails"),
    ]
    create_detail = entries[0][3]
    assert create_detail["priority"] == 5 and create_detail["backend"] == "redis"
    assert create_detail["options"] == {"a": "1"}
    assert entries[1][3] == {"before": {"concurrency": 4}, "after": {"concurrency": 8}}


def test_audit_is_newest_first_with_ids_and_limit(store: Store) -> None:
    for name in ("a", "b", "c"):
        store.create_queue(spec(name), actor="t")
    entries = store.list_audit(2)
    assert [e.target for e in entries] == ["c", "b"]
    assert entries[0].id > entries[1].id
    assert entries[0].at.ToNanoseconds() >= entries[1].at.ToNanoseconds() > 0


def test_node_registration_does_not_bump_generation(store: Store) -> None:
    store.register_node(node())
    assert generation_of(store) == 0
    assert store.list_audit(10) == []


# -- nodes --------------------------------------------------------------------

def test_register_node(store: Store) -> None:
    before = time.time()
    rec = store.register_node(node())
    assert (rec.node_id, rec.hostname, rec.labels, rec.version, rec.tasks) == (
        "n1", "host-1", {"dc": "us-east"}, "1.0", ["a.b"])
    assert before <= rec.registered_at <= rec.last_seen <= time.time()
    assert rec.draining is False
    assert store.get_node("n1") == rec
    with pytest.raises(NotFound):
        store.get_node("nope")


def test_reregistration_keeps_registered_at_and_draining(store: Store) -> None:
    first = store.register_node(node())
    store.set_draining("n1", True, actor="t")
    time.sleep(0.02)
    again = store.register_node(node(hostname="host-2", labels={"dc": "eu-west"}, version="2.0", tasks=["c"],
                                     draining=False, registered_at=1.0))
    assert again.registered_at == first.registered_at
    assert again.draining is True, "a restarted node stays drained"
    assert again.last_seen > first.last_seen
    assert (again.hostname, again.labels, again.version, again.tasks) == ("host-2", {"dc": "eu-west"}, "2.0", ["c"])
    assert store.get_node("n1") == again


def test_set_draining(store: Store) -> None:
    store.register_node(node("n1"))
    store.register_node(node("n2"))
    rec, generation = store.set_draining("n1", True, actor="t")
    assert rec.draining is True and generation == 1
    assert {n.node_id: n.draining for n in store.list_nodes()} == {"n1": True, "n2": False}
    rec, _ = store.set_draining("n1", False, actor="t")
    assert rec.draining is False and store.get_node("n1").draining is False
    with pytest.raises(NotFound):
        store.set_draining("ghost", True, actor="t")
    assert generation_of(store) == 2


def test_touch_nodes(store: Store) -> None:
    store.register_node(node("n1"))
    store.register_node(node("n2"))
    store.touch_nodes({"n1": 1000.5, "ghost": 5.0})
    assert store.get_node("n1").last_seen == 1000.5
    assert store.get_node("n2").last_seen > 1000.5, "untouched nodes keep their time"
    store.touch_nodes({})
    assert [n.node_id for n in store.list_nodes()] == ["n1", "n2"], "unknown ids are not created"


def test_cordon_keeps_the_queues_the_node_runs(store: Store) -> None:
    store.create_queue(spec("east"), actor="t")
    store.create_queue(spec("west", selector="dc=eu-west"), actor="t")
    store.register_node(node("n1"))
    rec, generation = store.cordon_node("n1", actor="ops")
    assert rec.cordoned_queues == ["east"] and generation == 3
    # Cordoning again changes nothing: a later queue does not join the list.
    store.create_queue(spec("later"), actor="t")
    again, generation = store.cordon_node("n1", actor="ops")
    assert again.cordoned_queues == ["east"] and generation == 4
    # A restarted node keeps its cordon.
    assert store.register_node(node("n1")).cordoned_queues == ["east"]
    assert store.get_node("n1").cordoned_queues == ["east"]
    assert audit(store)[-2][1:] == ("node.cordon", "n1", {"keeps": ["east"]})
    with pytest.raises(NotFound):
        store.cordon_node("ghost", actor="t")


def test_a_deleted_queue_leaves_cordoned_nodes(store: Store) -> None:
    store.create_queue(spec("east"), actor="t")
    store.register_node(node("n1"))
    store.register_node(node("n2"))
    store.cordon_node("n1", actor="t")
    store.delete_queue("east", actor="t")
    # Created again, it is a new queue: the cordoned node does not get it back.
    store.create_queue(spec("east"), actor="t")
    assert store.get_node("n1").cordoned_queues == []
    assert store.get_node("n2").cordoned_queues is None


def test_uncordon_ends_cordon_and_drain(store: Store) -> None:
    store.register_node(node("n1"))
    store.set_draining("n1", True, actor="t")
    store.cordon_node("n1", actor="t")
    assert store.get_node("n1").cordoned_queues == [], "a draining node runs nothing"
    rec, generation = store.uncordon_node("n1", actor="ops")
    assert (rec.cordoned_queues, rec.draining, generation) == (None, False, 3)
    assert audit(store)[-1][1:] == ("node.uncordon", "n1", {"was_cordoned": True, "was_draining": True})
    # Nothing to undo: no change, no audit entry.
    assert store.uncordon_node("n1", actor="ops")[1] == 3
    assert len(audit(store)) == 3
    with pytest.raises(NotFound):
        store.uncordon_node("ghost", actor="t")


def test_forget_node(store: Store) -> None:
    store.register_node(node("n1"))
    store.register_node(node("n2"))
    store.forget_node("n1", actor="ops")
    assert [n.node_id for n in store.list_nodes()] == ["n2"]
    assert audit(store)[-1][1:] == ("node.forget", "n1", {"hostname": "host-1", "labels": {"dc": "us-east"}})
    assert generation_of(store) == 0
    with pytest.raises(NotFound):
        store.forget_node("n1", actor="ops")
    # It registers anew, cordon and drain gone.
    assert store.register_node(node("n1")).cordoned_queues is None


# -- apply ----------------------------------------------------------------------

def kinds(changes: list) -> list[tuple[str, str, list[str]]]:
    from octobot.v1 import admin_pb2

    return [(admin_pb2.QueueChangeKind.Name(c.kind).rsplit("_", 1)[1].lower(), c.name, list(c.fields))
            for c in changes]


def test_apply_creates_updates_and_prunes_in_one_generation(store: Store) -> None:
    store.create_queue(spec("keep"), actor="t")
    store.create_queue(spec("old"), actor="t")
    store.register_node(node("n1"))
    store.cordon_node("n1", actor="t")
    desired = [spec("new", priority=9), spec("keep", concurrency=16, options={"a": "2"})]

    changes, generation = store.apply_queues(desired, prune=False, dry_run=True, actor="ops")
    assert kinds(changes) == [("create", "new", []), ("update", "keep", ["concurrency", "options"])]
    assert generation == 0 and generation_of(store) == 3 and len(store.list_queues()) == 2

    changes, generation = store.apply_queues(desired, prune=True, dry_run=False, actor="ops")
    assert kinds(changes) == [("create", "new", []), ("update", "keep", ["concurrency", "options"]),
                              ("delete", "old", [])]
    assert generation == 4 == generation_of(store), "one change, one generation"
    assert changes[1].before.concurrency == 4 and changes[1].after.concurrency == 16
    assert changes[0].after.created_at.ToNanoseconds() > 0, "after is the stored queue"
    assert [(q.name, q.concurrency) for q in store.list_queues()] == [("keep", 16), ("new", 4)]
    assert [a[1:3] for a in audit(store)[-3:]] == [("queue.create", "new"), ("queue.update", "keep"),
                                                   ("queue.delete", "old")]
    assert audit(store)[-2][3] == {"before": {"concurrency": 4, "options": {"a": "1"}},
                                   "after": {"concurrency": 16, "options": {"a": "2"}}}
    assert store.get_node("n1").cordoned_queues == ["keep"], "a pruned queue leaves cordoned nodes"

    # The same declaration again changes nothing.
    assert store.apply_queues(desired, prune=True, dry_run=False, actor="ops") == ([], 0)
    assert generation_of(store) == 4


def test_apply_without_prune_keeps_undeclared_queues(store: Store) -> None:
    store.create_queue(spec("other"), actor="t")
    changes, _ = store.apply_queues([spec("mine")], prune=False, dry_run=False, actor="ops")
    assert kinds(changes) == [("create", "mine", [])]
    assert [q.name for q in store.list_queues()] == ["mine", "other"]
    changes, _ = store.apply_queues([], prune=True, dry_run=False, actor="ops")
    assert kinds(changes) == [("delete", "mine", []), ("delete", "other", [])]
    assert store.list_queues() == []


# -- restart and schema -------------------------------------------------------

def test_reopen_keeps_everything(store_url: str) -> None:
    first = Store.open(store_url)
    first.create_queue(spec("a"), actor="t")
    first.create_queue(spec("b", paused=True), actor="t")
    first.update_queue("a", {"priority": 7}, actor="t")
    reg = first.register_node(node("n1"))
    first.set_draining("n1", True, actor="t")
    queues, nodes, entries, generation = first.list_queues(), first.list_nodes(), first.list_audit(100), generation_of(first)
    first.close()

    second = Store.open(store_url)
    try:
        assert second.list_queues() == queues
        assert second.list_nodes() == nodes
        assert second.list_audit(100) == entries
        assert generation_of(second) == generation == 4
        assert second.get_node("n1").registered_at == reg.registered_at
        # It keeps counting from where it was.
        assert second.create_queue(spec("c"), actor="t")[1] == 5
        with pytest.raises(AlreadyExists):
            second.create_queue(spec("a"), actor="t")
        with second.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0006"]
    finally:
        second.close()

    third = Store.open(store_url)
    try:
        assert [q.name for q in third.list_queues()] == ["a", "b", "c"]
    finally:
        third.close()


def test_schema_tables(store: Store) -> None:
    names = set(inspect(store.engine).get_table_names())
    assert {"queues", "nodes", "audit", "counters", "alembic_version"} <= names


def test_models_match_migrations(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


# -- stats rollups -------------------------------------------------------------

def _histogram(*values: float) -> bytes:
    from octobot.histogram import Histogram

    h = Histogram()
    for v in values:
        h.record(v)
    return h.to_proto().SerializeToString()


def test_stats_minutes_merge_query_and_prune(store: Store) -> None:
    from octobot.coordinator.records import StatsMinute
    from octobot.histogram import Histogram
    from octobot.v1 import stats_pb2

    def minute(m: int, dim: str = "", value: str = "", ok: int = 1, backlog: int = 3,
               run: bytes = _histogram(0.1)) -> StatsMinute:
        return StatsMinute(queue="q", dim=dim, value=value, minute=m, succeeded=ok, backlog=backlog,
                           run_time=run, wait_time=_histogram(), end_to_end=_histogram())

    store.merge_stats_minutes([minute(100), minute(100, "dc", "east"), minute(101)])
    # A second part of minute 100 (a later flush, a late sample) adds up.
    store.merge_stats_minutes([minute(100, ok=4, backlog=9, run=_histogram(0.2, 0.2))])
    rows = store.stats_minutes("", 0, 200)
    assert [(r.minute, r.succeeded, r.backlog) for r in rows] == [(100, 5, 9), (101, 1, 3)]
    merged = Histogram.from_proto(stats_pb2.Histogram.FromString(rows[0].run_time))
    assert merged.count == 3 and merged.quantile(1.0) == pytest.approx(0.2, rel=0.01)
    assert [(r.value, r.succeeded) for r in store.stats_minutes("dc", 0, 200)] == [("east", 1)]
    assert store.stats_minutes("", 101, 101, queue="q")[0].minute == 101
    assert store.stats_minutes("", 0, 200, queue="other") == []
    assert store.prune_stats_minutes(101) == 2
    assert [r.minute for r in store.stats_minutes("", 0, 200)] == [101]


def test_brokers_are_bounded_and_cannot_vanish_under_their_queues(store: Store) -> None:
    from octobot import queue_specs
    from octobot.coordinator.records import FailedPrecondition, TooMany

    for i in range(queue_specs.MAX_BROKERS):
        store.create_broker(queue_pb2.Broker(name=f"b{i}", backend="redis", url=f"redis://h{i}:6379/0"), "t")
    with pytest.raises(TooMany, match=f"there are {queue_specs.MAX_BROKERS} brokers already"):
        store.create_broker(queue_pb2.Broker(name="one-more", backend="redis", url="redis://h:6379/0"), "t")
    store.create_queue(queue_pb2.QueueSpec(name="q", backend="redis", broker="b0", priority=5, concurrency=1,
                                           max_message_bytes=1000), "t")
    with pytest.raises(FailedPrecondition, match="used by 1 queue"):
        store.delete_broker("b0", "t")
    with pytest.raises(FailedPrecondition, match="has backend redis, not amqp"):
        store.create_queue(queue_pb2.QueueSpec(name="r", backend="amqp", broker="b1", priority=5, concurrency=1,
                                               max_message_bytes=1000), "t")
    assert store.get_queue("q").url == "redis://h0:6379/0", "read with its broker's URL"
