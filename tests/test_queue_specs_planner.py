"""Queue spec defaults, validation and updates; the assignment planner."""

from __future__ import annotations

import math

import os
from pathlib import Path

import pytest

from octobot import queue_specs
from octobot.coordinator import planner
from octobot.envelope import DEFAULT_MAX_BYTES
from octobot.v1 import admin_pb2, queue_pb2

REDIS = "redis://127.0.0.1:6379/0"


def full(name: str = "emails", **kwargs: object) -> queue_pb2.QueueSpec:
    """A spec as CreateQueue stores it: defaults filled and validated."""
    values: dict[str, object] = {"backend": "redis", **kwargs}
    if values["backend"] == "redis":
        values.setdefault("url", REDIS)
    return queue_specs.validate(queue_specs.with_defaults(queue_pb2.QueueSpec(name=name, **values)))  # type: ignore[arg-type]


# -- defaults -------------------------------------------------------------------

def test_defaults_are_filled() -> None:
    out = queue_specs.with_defaults(queue_pb2.QueueSpec(name="q", backend="redis"))
    assert (out.priority, out.concurrency, out.max_retries, out.retry_backoff, out.max_message_bytes) == (
        5, 4, 3, 1.0, DEFAULT_MAX_BYTES)
    assert (out.task_timeout, out.paused, out.selector) == (0.0, False, "")
    assert out.url == "", "a network broker's URL is never guessed"


def test_defaults_do_not_touch_the_input_or_set_values() -> None:
    given = queue_pb2.QueueSpec(name="q", backend="redis", url="redis://h:1/2", priority=9, concurrency=1,
                                max_retries=7, retry_backoff=0.5, max_message_bytes=100)
    out = queue_specs.with_defaults(given)
    assert (out.url, out.priority, out.concurrency, out.max_retries, out.retry_backoff, out.max_message_bytes) == (
        "redis://h:1/2", 9, 1, 7, 0.5, 100)
    bare = queue_pb2.QueueSpec(name="q", backend="redis")
    queue_specs.with_defaults(bare)
    assert bare.priority == 0 and bare.url == "", "with_defaults returns a copy"


def test_only_the_embedded_backend_has_a_default_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for backend in ("redis", "amqp", "beanstalk"):
        bare = queue_specs.with_defaults(queue_pb2.QueueSpec(name="q", backend=backend))
        assert bare.url == ""
        with pytest.raises(queue_specs.SpecError, match="a queue needs a broker URL .--url. or a named broker"):
            queue_specs.validate(bare)
    sqlite_default = queue_specs.with_defaults(queue_pb2.QueueSpec(name="q", backend="sqlite")).url
    assert sqlite_default.startswith("sqlite:///")
    monkeypatch.chdir(tmp_path)
    out = full(backend="sqlite")
    assert out.url.startswith("sqlite:////")
    assert os.path.isabs(out.url[len("sqlite:///"):])
    assert out.url == "sqlite:///" + str(tmp_path / sqlite_default[len("sqlite:///"):])


def test_unknown_backend_keeps_empty_url_for_validate_to_reject() -> None:
    out = queue_specs.with_defaults(queue_pb2.QueueSpec(name="q", backend="kafka"))
    assert out.url == ""
    with pytest.raises(ValueError, match="unknown backend 'kafka'"):
        queue_specs.validate(out)


def test_sqlite_url_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert full(backend="sqlite", url="sqlite:///queues/q.db").url == f"sqlite:///{tmp_path}/queues/q.db"
    assert full(backend="sqlite", url="sqlite:////var/lib/q.db").url == "sqlite:////var/lib/q.db"


def test_validate_returns_a_copy_and_accepts_a_good_spec() -> None:
    spec = queue_specs.with_defaults(queue_pb2.QueueSpec(name="a.b_c-1", backend="redis", url=REDIS,
                                                         selector="dc in (x,y)", priority=10, concurrency=1000))
    out = queue_specs.validate(spec)
    assert out == spec and out is not spec


# -- validation -----------------------------------------------------------------

@pytest.mark.parametrize(("changes", "field"), [
    ({"name": ""}, "name"),
    ({"name": "bad name"}, "name"),
    ({"name": "-leading"}, "name"),
    ({"name": "a/b"}, "name"),
    ({"name": "x" * 129}, "name"),
    ({"priority": 0}, "priority"),
    ({"priority": 11}, "priority"),
    ({"priority": -3}, "priority"),
    ({"concurrency": 0}, "concurrency"),
    ({"concurrency": 1001}, "concurrency"),
    ({"max_retries": -1}, "max_retries"),
    ({"retry_backoff": -0.5}, "retry_backoff"),
    ({"task_timeout": -1.0}, "task_timeout"),
    ({"max_message_bytes": 0}, "max_message_bytes"),
    ({"selector": "dc in ()"}, "dc in ()"),
    ({"selector": "dc ~ x"}, "dc ~ x"),
    ({"backend": "kafka"}, "kafka"),
    ({"backend": ""}, "backend"),
    ({"url": "amqp://localhost"}, "amqp://localhost"),
    ({"url": "nonsense"}, "nonsense"),
    ({"retry_backoff": math.inf}, "retry_backoff"),
    ({"retry_backoff": math.nan}, "retry_backoff"),
    ({"task_timeout": math.inf}, "task_timeout"),
    ({"url": "redis://127.0.0.1:" + "9" * 5 + "/0"}, "port"),
    ({"url": "redis://127.0.0.1:6379/" + "1" + "0" * 12}, "database"),
    ({"url": "redis://127.0.0.1:6379/" + "x" * 10_000_000}, "url"),
    ({"max_message_bytes": queue_specs.MAX_MESSAGE_BYTES + 1}, "max_message_bytes"),
    ({"options": {f"o{i}": "v" for i in range(100_000)}}, "options"),
    ({"options": {"visibility_timeout": "0"}}, "visibility_timeout"),
    ({"options": {"visibility_timeout": "nan"}}, "visibility_timeout"),
    ({"options": {"visibility_timeout": "abc"}}, "visibility_timeout"),
    ({"options": {"visibility_timeout": "inf"}}, "visibility_timeout"),
    ({"options": {"visibilty_timeout": "30"}}, "unknown option 'visibilty_timeout' for the redis backend"),
    ({"options": {"x-queue-type": "quorum"}}, "unknown option 'x-queue-type' for the redis backend"),
    ({"backend": "amqp", "options": {"x-": "1"}}, "unknown option 'x-' for the amqp backend"),
    ({"backend": "beanstalk", "options": {"connections": "0"}}, "option connections must be an integer"),
    ({"backend": "beanstalk", "options": {"connections": "2.5"}}, "option connections must be an integer"),
    ({"url": ""}, "a queue needs a broker URL"),
    ({"broker": "main"}, "give --url or --broker, not both"),
    ({"url": "", "broker": "bad name"}, "broker name 'bad name' is invalid"),
])
def test_validate_names_the_bad_field(changes: dict[str, object], field: str) -> None:
    spec = queue_specs.with_defaults(queue_pb2.QueueSpec(name="q", backend="redis", url=REDIS))
    for key, value in changes.items():
        if key == "options":
            spec.options.update(value)  # type: ignore[call-overload]
        else:
            setattr(spec, key, value)
    with pytest.raises(ValueError) as info:
        queue_specs.validate(spec)
    assert field in str(info.value)


def test_name_of_128_characters_is_fine() -> None:
    assert full("x" * 128).name == "x" * 128


def test_sqlite_memory_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="file path"):
        full(backend="sqlite", url="sqlite:///:memory:")


# -- updates --------------------------------------------------------------------

def test_merge_update_changes_only_named_paths() -> None:
    current = full(priority=3, concurrency=2, selector="dc=a", options={"visibility_timeout": "10"})
    new = queue_pb2.QueueSpec(name="emails", priority=9, concurrency=50, selector="dc=b", paused=True)
    merged, changes = queue_specs.merge_update(current, new, ["priority", "paused"])
    assert changes == {"priority": 9, "paused": True}
    assert (merged.priority, merged.paused) == (9, True)
    assert (merged.concurrency, merged.selector, dict(merged.options), merged.url) == (
        2, "dc=a", {"visibility_timeout": "10"}, current.url)
    assert current.priority == 3, "the current spec is not modified"


def test_merge_update_can_set_a_field_to_zero() -> None:
    current = full(max_retries=5, task_timeout=10.0, paused=True)
    merged, changes = queue_specs.merge_update(current, queue_pb2.QueueSpec(), ["max_retries", "task_timeout", "paused"])
    assert changes == {"max_retries": 0, "task_timeout": 0.0, "paused": False}
    assert (merged.max_retries, merged.task_timeout, merged.paused) == (0, 0.0, False)


def test_merge_update_replaces_options() -> None:
    current = full(backend="amqp", url="amqp://guest:guest@127.0.0.1:5672/%2F",
                   options={"x-max-length": "1", "x-queue-type": "quorum"})
    new = queue_pb2.QueueSpec(options={"visibility_timeout": "3"})
    merged, changes = queue_specs.merge_update(current, new, ["options"])
    assert dict(merged.options) == {"visibility_timeout": "3"}
    assert changes == {"options": {"visibility_timeout": "3"}}


def test_merge_update_validates_the_result() -> None:
    current = full()
    with pytest.raises(ValueError, match="priority"):
        queue_specs.merge_update(current, queue_pb2.QueueSpec(priority=11), ["priority"])
    with pytest.raises(ValueError, match="concurrency"):
        queue_specs.merge_update(current, queue_pb2.QueueSpec(), ["concurrency"])


def test_merge_update_backend_change_resets_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    current = full(url="redis://other:6379/3")
    merged, changes = queue_specs.merge_update(current, queue_pb2.QueueSpec(backend="sqlite"), ["backend"])
    assert merged.backend == "sqlite"
    assert merged.url.startswith(f"sqlite:///{tmp_path}/")
    assert changes == {"backend": "sqlite", "url": merged.url}


def on_broker(**kwargs: object) -> queue_pb2.QueueSpec:
    """A queue on the named broker "main" as the store returns it: the broker's URLs filled in."""
    spec = full(url="", broker="main", **kwargs)
    spec.url = "redis://main:6379/0"
    spec.endpoints.add(selector="dc=eu", url="redis://eu:6379/0")
    return spec


def test_merge_update_on_a_named_broker_keeps_it_and_stores_no_url() -> None:
    merged, changes = queue_specs.merge_update(on_broker(), queue_pb2.QueueSpec(priority=9), ["priority"])
    assert changes == {"priority": 9}
    assert (merged.broker, merged.url, list(merged.endpoints)) == ("main", "", [])


def test_merge_update_moves_a_queue_between_its_own_url_and_a_named_broker() -> None:
    merged, changes = queue_specs.merge_update(on_broker(), queue_pb2.QueueSpec(url="redis://own:6379/1"), ["url"])
    assert changes == {"url": "redis://own:6379/1", "broker": ""}
    merged, changes = queue_specs.merge_update(full(), queue_pb2.QueueSpec(broker="main"), ["broker"])
    assert changes == {"broker": "main", "url": ""} and merged.url == ""
    with pytest.raises(queue_specs.SpecError, match="a queue needs a broker URL"):
        queue_specs.merge_update(on_broker(), queue_pb2.QueueSpec(), ["broker"])


def test_a_named_broker_is_checked_and_canonical() -> None:
    broker = queue_specs.validate_broker(queue_pb2.Broker(
        name="main", backend="redis", url="redis://us:6379/0",
        endpoints=[queue_pb2.Endpoint(selector="dc=eu-west", url="redis://eu:6379/0")]))
    assert (broker.url, [(e.selector, e.url) for e in broker.endpoints]) == (
        "redis://us:6379/0", [("dc=eu-west", "redis://eu:6379/0")])
    for bad, message in [
        ({"name": "a b"}, "broker name 'a b' is invalid"),
        ({"backend": "kafka"}, "unknown backend"),
        ({"url": ""}, "the default URL .* a URL is required"),
        ({"url": "amqp://x"}, "does not fit this backend"),
        ({"endpoints": [queue_pb2.Endpoint(selector="", url="redis://eu")]}, "an endpoint needs a selector"),
        ({"endpoints": [queue_pb2.Endpoint(selector="dc ~ x", url="redis://eu")]}, "endpoint 'dc ~ x'"),
        ({"endpoints": [queue_pb2.Endpoint(selector="dc=eu", url="beanstalk://eu")]}, "endpoint 'dc=eu': URL"),
        ({"endpoints": [queue_pb2.Endpoint(selector=f"n={i}", url="redis://eu") for i in range(65)]}, "at most 64"),
        ({"endpoints": [queue_pb2.Endpoint(selector="dc=eu", url="redis://a"),
                        queue_pb2.Endpoint(selector="dc=eu", url="redis://b")]}, "endpoint 'dc=eu' is given twice"),
    ]:
        values: dict[str, object] = {"name": "main", "backend": "redis", "url": "redis://us:6379/0", **bad}
        with pytest.raises(queue_specs.SpecError, match=message):
            queue_specs.validate_broker(queue_pb2.Broker(**values))  # type: ignore[arg-type]


def test_a_node_runs_each_queue_on_the_endpoint_its_labels_select() -> None:
    spec = on_broker()
    spec.endpoints.add(selector="dc=eu", url="redis://second-match:6379/0")
    assert queue_specs.endpoint_for(spec, {"dc": "eu", "zone": "a"}) == "redis://eu:6379/0", "the first match wins"
    assert queue_specs.endpoint_for(spec, {"dc": "us"}) == "redis://main:6379/0"
    assert queue_specs.endpoint_for(spec, {}) == "redis://main:6379/0"
    assignment = queue_pb2.Assignment(generation=3, queues=[spec, full("plain")])
    eu = queue_specs.for_node(assignment, {"dc": "eu"})
    assert [(q.name, q.url, len(q.endpoints)) for q in eu.queues] == [("emails", "redis://eu:6379/0", 0),
                                                                       ("plain", REDIS, 0)]
    assert len(assignment.queues[0].endpoints) == 2, "the assignment itself is not changed"


def test_merge_update_records_a_canonicalised_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    current = full(backend="sqlite", url="sqlite:///a.db")
    merged, changes = queue_specs.merge_update(current, queue_pb2.QueueSpec(url="sqlite:///b.db"), ["url"])
    assert changes == {"url": f"sqlite:///{tmp_path}/b.db"} and merged.url == changes["url"]


@pytest.mark.parametrize("paths", [["name"], ["created_at"], ["priority", "bogus"], ["updated_at"]])
def test_merge_update_rejects_unknown_paths(paths: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        queue_specs.merge_update(full(), queue_pb2.QueueSpec(priority=2), paths)
    bad = [p for p in paths if p not in queue_specs.UPDATABLE]
    assert all(p in str(info.value) for p in bad)
    assert "cannot update" in str(info.value)


def test_merge_update_rejects_empty_paths() -> None:
    with pytest.raises(ValueError, match="no fields"):
        queue_specs.merge_update(full(), queue_pb2.QueueSpec(priority=2), [])


# -- planner --------------------------------------------------------------------

def node(labels: dict[str, str], draining: bool = False, cordoned: list[str] | None = None,
         tasks: tuple[str, ...] = ()) -> planner.Placeable:
    return planner.Placeable(labels, frozenset(tasks), draining, cordoned)


def queues() -> list[queue_pb2.QueueSpec]:
    return [full("all"), full("east", selector="dc=us-east"), full("west", selector="dc=eu-west"),
            full("gpu", selector="gpu,dc in (us-east,eu-west)"), full("nogpu", selector="!gpu")]


def test_plan_picks_queues_by_selector() -> None:
    a = planner.plan(node({"dc": "us-east"}, False), queues(), 7, {})
    assert [q.name for q in a.queues] == ["all", "east", "nogpu"]
    assert a.generation == 7 and a.drain is False
    b = planner.plan(node({"dc": "eu-west", "gpu": "1"}, False), queues(), 8, {})
    assert [q.name for q in b.queues] == ["all", "west", "gpu"]
    assert [q.name for q in planner.plan(node({}, False), queues(), 1, {}).queues] == ["all", "nogpu"]


def test_plan_carries_the_full_specs() -> None:
    qs = queues()
    a = planner.plan(node({"dc": "us-east"}, False), qs, 1, {})
    assert a.queues[1] == qs[1]


def test_draining_node_gets_no_queues() -> None:
    a = planner.plan(node({"dc": "us-east"}, True), queues(), 3, {})
    assert list(a.queues) == []
    assert a.drain is True and a.generation == 3
    assert not planner.runs_on(queues()[0], node({"dc": "us-east"}, True))
    assert planner.runs_on(queues()[0], node({"dc": "us-east"}, False))


def test_plan_with_no_queues() -> None:
    a = planner.plan(node({"dc": "x"}, False), [], 0, {})
    assert list(a.queues) == [] and a.drain is False


def test_same_work_ignores_generation() -> None:
    a = planner.plan(node({"dc": "us-east"}, False), queues(), 1, {})
    b = planner.plan(node({"dc": "us-east"}, False), queues(), 2, {})
    assert planner.same_work(a, b)
    assert not planner.same_work(a, None)


def test_same_work_sees_spec_changes() -> None:
    before = queues()
    after = queues()
    after[0].concurrency = 9
    a = planner.plan(node({"dc": "us-east"}, False), before, 1, {})
    b = planner.plan(node({"dc": "us-east"}, False), after, 2, {})
    assert not planner.same_work(a, b)
    # A change to a queue this node does not run is not its work.
    after2 = queues()
    after2[2].concurrency = 9  # "west"
    assert planner.same_work(a, planner.plan(node({"dc": "us-east"}, False), after2, 3, {}))


def test_same_work_sees_drain_and_queue_set_changes() -> None:
    a = planner.plan(node({"dc": "us-east"}, False), queues(), 1, {})
    assert not planner.same_work(a, planner.plan(node({"dc": "us-east"}, True), queues(), 1, {}))
    assert not planner.same_work(a, planner.plan(node({"dc": "us-east"}, False), queues()[:2], 1, {}))
    assert not planner.same_work(a, planner.plan(node({"dc": "eu-west"}, False), queues(), 1, {}))


def test_cordoned_node_keeps_only_its_queues() -> None:
    a = planner.plan(node({"dc": "us-east"}, False, cordoned=["east", "west", "gone"]), queues(), 4, {})
    assert [q.name for q in a.queues] == ["east"], "still only what its labels select"
    assert a.drain is False
    assert [q.name for q in planner.plan(node({"dc": "us-east"}, False, cordoned=[]), queues(), 4, {}).queues] == []
    assert planner.runs_on(queues()[1], node({"dc": "us-east"}, False, cordoned=None))
    assert not planner.runs_on(queues()[0], node({"dc": "us-east"}, False, cordoned=["east"]))
    assert not planner.runs_on(queues()[1], node({"dc": "us-east"}, True, cordoned=["east"]))


# -- apply's diff -------------------------------------------------------------------

def test_diff_creates_updates_and_prunes() -> None:
    current = [full("a"), full("b", priority=2), full("c")]
    desired = [full("new"), full("b", priority=9, options={"visibility_timeout": "5"}), full("a")]
    changes = queue_specs.diff(current, desired, prune=False)
    assert [(c.kind, c.name, list(c.fields)) for c in changes] == [
        (admin_pb2.QUEUE_CHANGE_KIND_CREATE, "new", []),
        (admin_pb2.QUEUE_CHANGE_KIND_UPDATE, "b", ["priority", "options"])]
    assert changes[1].before.priority == 2 and changes[1].after.priority == 9
    assert not changes[0].HasField("before") and changes[0].after == desired[0]
    pruned = queue_specs.diff(current, desired, prune=True)
    assert [(c.kind, c.name) for c in pruned[2:]] == [(admin_pb2.QUEUE_CHANGE_KIND_DELETE, "c")]
    assert queue_specs.diff(current, current, prune=True) == []


def test_validate_all_names_the_queue_and_refuses_duplicates() -> None:
    out = queue_specs.validate_all([queue_pb2.QueueSpec(name="a", backend="redis", url=REDIS)])
    assert out == [full("a")]
    with pytest.raises(queue_specs.SpecError, match="queue 'b': priority must be between 1 and 10"):
        queue_specs.validate_all([queue_pb2.QueueSpec(name="b", backend="redis", url=REDIS, priority=11)])
    with pytest.raises(ValueError, match="queue 'a' is declared twice"):
        queue_specs.validate_all([full("a"), full("a", priority=2)])


def test_a_queue_declaring_tasks_runs_only_on_nodes_that_have_them() -> None:
    assert planner.carries([], set())
    assert planner.carries(["emails.send", "reports.*"], {"emails.send", "reports.daily", "x"})
    assert not planner.carries(["emails.send", "reports.*"], {"emails.send", "reportsx"})
    assert not planner.carries(["emails.send"], {"emails.sendmore"})
    assert planner.carries(["*"], {"any"}) and not planner.carries(["*"], set())
    emails = full("emails", tasks=["emails.*"])
    assert planner.runs_on(emails, node({}, tasks=("emails.send",)))
    assert not planner.runs_on(emails, node({}, tasks=("reports.daily",)))
    with_tasks = planner.plan(node({"dc": "us-east"}, tasks=("emails.send",)), [*queues(), emails], 1, {})
    without = planner.plan(node({"dc": "us-east"}, tasks=("reports.daily",)), [*queues(), emails], 1, {})
    assert [q.name for q in with_tasks.queues] == [*[q.name for q in without.queues], "emails"]


def test_served_tasks_are_those_other_nodes_of_a_queue_have_and_this_one_lacks() -> None:
    qs = [full("all"), full("east", selector="dc=us-east"), full("west", selector="dc=eu-west")]
    old = node({"dc": "us-east"}, tasks=("a.send",))
    new = node({"dc": "us-east"}, tasks=("a.send", "a.new"))
    west = node({"dc": "eu-west"}, tasks=("a.send", "w.only"))
    gone = node({"dc": "eu-west"}, draining=True, tasks=("never.placed",))
    served = planner.served_tasks(qs, [old, new, west, gone])
    assert set(served) == {"all", "east"}  # west's one node has all it has
    assert planner.served_tasks(qs, [new, new]) == {}  # the same tasks everywhere: nothing to list
    # Each node's assignment carries them; the stored spec is left as it was.
    plan = planner.plan(old, qs, 5, served)
    assert [(q.name, sorted(q.served_tasks)) for q in plan.queues] == [("all", ["a.new", "w.only"]), ("east", ["a.new"])]
    assert [(q.name, list(q.served_tasks)) for q in planner.plan(new, qs, 5, served).queues] == [
        ("all", ["w.only"]), ("east", [])]
    assert list(qs[0].served_tasks) == []
    assert not planner.same_work(plan, planner.plan(old, qs, 5, {}))


def test_declared_tasks_are_validated_and_updated() -> None:
    ok = queue_specs.validate(full(tasks=["emails.send", "reports.*", "*"]))
    assert list(ok.tasks) == ["emails.send", "reports.*", "*"]
    for bad in (["a b"], ["re*ports"], [""], ["x" * 256], ["t"] * 101, ["a", "a"]):
        with pytest.raises(queue_specs.SpecError, match="tasks"):
            queue_specs.validate(full(tasks=bad))
    merged, changes = queue_specs.merge_update(full(tasks=["a"]), queue_pb2.QueueSpec(tasks=["b", "c.*"]), ["tasks"])
    assert list(merged.tasks) == ["b", "c.*"] and changes == {"tasks": ["b", "c.*"]}
    cleared, _ = queue_specs.merge_update(merged, queue_pb2.QueueSpec(), ["tasks"])
    assert list(cleared.tasks) == []


def test_one_node_with_thousands_of_task_names_crowds_out_nothing_and_swells_nothing() -> None:
    """A hostile node registering 10,000 long names used to fill every queue's
    list (names that sort first won), so an honest new task was left out."""
    qs = [full(f"q{i}") for i in range(5)]
    hoarder = node({}, tasks=tuple("\U0001F600" * 200 + f"{i:055d}" for i in range(10_000)))
    new, old = node({}, tasks=("emails.send", "reports.build")), node({}, tasks=("emails.send",))
    served = planner.served_tasks(qs, [hoarder, new, old])
    plan = planner.plan(old, qs, 1, served)
    assert all("reports.build" in q.served_tasks for q in plan.queues)
    assert len(plan.SerializeToString()) <= planner.MAX_SERVED_BYTES + 10_000  # bytes, not characters
    assert all(len(q.served_tasks) <= planner.MAX_SERVED_TASKS for q in plan.queues)
    # The hoarder is told only of the tasks it lacks.
    assert [list(q.served_tasks) for q in planner.plan(hoarder, qs, 1, served).queues] == [
        ["emails.send", "reports.build"]] * 5


def test_queue_health_counts_nodes_placed_alike_once_and_errors_node_by_node() -> None:
    from octobot.coordinator.queue_health import health
    from octobot.v1 import node_pb2

    qs = [full("east", selector="dc=us-east"), full("west", selector="dc=eu-west"), full("idle", selector="gpu"),
          full("held", paused=True)]
    broken = {"east": node_pb2.QueueStatus(queue="east", error="redis 127.0.0.1:1 unreachable")}
    nodes = [(node({"dc": "us-east"}), {}) for _ in range(999)] + [(node({"dc": "us-east"}), broken),
                                                                   (node({"dc": "eu-west"}), {})]
    got = {h.queue: (h.state, h.nodes, h.broker_errors, h.error) for h in health(qs, nodes)}
    assert got == {"east": (admin_pb2.QUEUE_STATE_BROKER_ERROR, 1000, 1, "redis 127.0.0.1:1 unreachable"),
                   "west": (admin_pb2.QUEUE_STATE_SERVING, 1, 0, ""),
                   "idle": (admin_pb2.QUEUE_STATE_UNSERVED, 0, 0, ""),
                   "held": (admin_pb2.QUEUE_STATE_PAUSED, 1001, 0, "")}
