"""octoctl's error paths and the gRPC statuses behind them, against a real
coordinator process (SQLite store)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from support.brokers import REDIS_URL, free_port
from support.cluster import Coordinator, octoctl, octoctl_json, one_error_line
import octobot
from octobot import rpc
from octobot.v1 import admin_pb2, admin_pb2_grpc, queue_pb2, stats_pb2, stats_pb2_grpc


@pytest.fixture
def channel(coord: Coordinator) -> Iterator[grpc.Channel]:
    ch = rpc.make_channel(coord.target)
    yield ch
    ch.close()


def add_sqlite_queue(target: str, name: str, tmp_path: Path) -> None:
    octoctl(target, "queue", "add", name, "--backend", "sqlite", "--url", f"sqlite:///{tmp_path / 'queues.db'}")


# -- octoctl ----------------------------------------------------------------------

@pytest.mark.parametrize("args", [["queue", "list"], ["queue", "show", "x"], ["enqueue", "x", "t"], ["stats"]])
def test_unreachable_coordinator_exits_3(args: list[str]) -> None:
    port = free_port()
    result = octoctl(f"127.0.0.1:{port}", *args, check=False)
    assert result.returncode == 3
    line = one_error_line(result)
    assert f"127.0.0.1:{port}" in line


def test_priority_out_of_range_exits_1(coord: Coordinator) -> None:
    result = octoctl(coord.target, "queue", "add", "q", "--backend", "redis", "--url", REDIS_URL, "--priority", "11",
                     check=False)
    assert result.returncode == 1
    assert "priority" in one_error_line(result)
    assert octoctl_json(coord.target, "queue", "list") == []


def test_priority_zero_is_refused_on_add(coord: Coordinator) -> None:
    result = octoctl(coord.target, "queue", "add", "q", "--backend", "redis", "--url", REDIS_URL, "--priority", "0",
                     check=False)
    assert result.returncode != 0
    assert "priority" in result.stderr


def test_priority_zero_is_refused_on_set(coord: Coordinator) -> None:
    octoctl(coord.target, "queue", "add", "q", "--backend", "redis", "--url", REDIS_URL)
    result = octoctl(coord.target, "queue", "set", "q", "--priority", "0", check=False)
    assert result.returncode == 1
    assert "priority" in one_error_line(result)


def test_unknown_backend_exits_1_naming_it(coord: Coordinator) -> None:
    result = octoctl(coord.target, "queue", "add", "q", "--backend", "kafka", check=False)
    assert result.returncode == 1
    assert "kafka" in one_error_line(result)


@pytest.mark.parametrize("option, error", [
    ("visibility_timeout=abc", "option visibility_timeout must be a number of seconds between 1 and 604800"),
    ("visibilty_timeout=30", "unknown option 'visibilty_timeout' for the redis backend (known: visibility_timeout)"),
])
def test_bad_backend_options_are_refused_where_they_are_set(coord: Coordinator, option: str, error: str) -> None:
    """Before: `--option visibility_timeout=abc` was accepted, and the queue then broke on every node."""
    for command in (["queue", "add", "opt", "--backend", "redis", "--url", REDIS_URL], ["queue", "set", "kept"]):
        if command[1] == "set":
            octoctl(coord.target, "queue", "add", "kept", "--backend", "redis", "--url", REDIS_URL)
        result = octoctl(coord.target, *command, "--option", option, check=False)
        assert result.returncode == 1 and error in one_error_line(result)
    assert "opt" not in octoctl(coord.target, "queue", "list").stdout


def test_missing_backend_is_a_usage_error(coord: Coordinator) -> None:
    result = octoctl(coord.target, "queue", "add", "q", check=False)
    assert result.returncode == 2
    assert "--backend" in one_error_line(result)


def test_existing_queue_exits_1(coord: Coordinator) -> None:
    octoctl(coord.target, "queue", "add", "q", "--backend", "redis", "--url", REDIS_URL)
    result = octoctl(coord.target, "queue", "add", "q", "--backend", "redis", "--url", REDIS_URL, "--priority", "9",
                     check=False)
    assert result.returncode == 1
    assert "already exists" in one_error_line(result)
    assert octoctl_json(coord.target, "queue", "show", "q")["priority"] == 5


@pytest.mark.parametrize("args", [["queue", "show", "ghost"], ["queue", "set", "ghost", "--priority", "3"],
                                  ["queue", "rm", "ghost", "--yes"], ["queue", "pause", "ghost"]])
def test_missing_queue_exits_1(coord: Coordinator, args: list[str]) -> None:
    result = octoctl(coord.target, *args, check=False)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "not found" in line and "ghost" in line


@pytest.mark.parametrize(("flag", "value"), [("--args", "not json"), ("--args", '{"a": 1}'),
                                             ("--kwargs", "[1]"), ("--kwargs", "{bad")])
def test_bad_json_arguments_exit_2(coord: Coordinator, tmp_path: Path, flag: str, value: str) -> None:
    add_sqlite_queue(coord.target, "q", tmp_path)
    result = octoctl(coord.target, "enqueue", "q", "t", flag, value, check=False)
    assert result.returncode == 2
    assert flag in one_error_line(result)


def test_enqueue_needs_task_or_file(coord: Coordinator) -> None:
    result = octoctl(coord.target, "enqueue", "q", check=False)
    assert result.returncode == 2
    one_error_line(result)


def test_queue_set_without_options_exits_2(coord: Coordinator) -> None:
    octoctl(coord.target, "queue", "add", "q", "--backend", "redis", "--url", REDIS_URL)
    result = octoctl(coord.target, "queue", "set", "q", check=False)
    assert result.returncode == 2
    assert "nothing to change" in one_error_line(result)


def test_enqueue_to_missing_queue_exits_1(coord: Coordinator) -> None:
    result = octoctl(coord.target, "enqueue", "ghost", "t", check=False)
    assert result.returncode == 1
    assert "ghost" in one_error_line(result)


def test_enqueue_and_file_with_a_bad_line(coord: Coordinator, tmp_path: Path) -> None:
    add_sqlite_queue(coord.target, "q", tmp_path)
    out = octoctl(coord.target, "enqueue", "q", "t", "--args", "[1]", "--kwargs", '{"k": 2}')
    assert re.fullmatch(r"[0-9a-f]{32}\n", out.stdout)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "t"}\n{"task": "t", "args": [1]}\nnot json\n{"task": "t"}\n')
    result = octoctl(coord.target, "enqueue", "q", "-f", str(bad), check=False)
    assert result.returncode == 1
    line = one_error_line(result)
    assert re.search(r"\b(line|message) 3\b", line), line
    assert "JSON" in line

    good = tmp_path / "good.jsonl"
    good.write_text('{"task": "t"}\n\n{"task": "u", "args": [1]}\n')
    assert octoctl(coord.target, "enqueue", "q", "-f", str(good)).stdout.strip() == "enqueued 2 messages on q"


def test_enqueue_file_names_the_real_line_number(coord: Coordinator, tmp_path: Path) -> None:
    add_sqlite_queue(coord.target, "q", tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": "t"}\n' * 1000 + "\n" + '{"task": "t"}\n' + "not json\n")
    result = octoctl(coord.target, "enqueue", "q", "-f", str(bad), check=False)
    assert result.returncode == 1
    assert "1003" in one_error_line(result)


def test_queue_list_json_and_history(coord: Coordinator, tmp_path: Path) -> None:
    octoctl(coord.target, "queue", "add", "jobs", "--backend", "redis", "--url", REDIS_URL, "--priority", "8",
            "--selector", "dc=x")
    queues = json.loads(octoctl(coord.target, "queue", "list", "-o", "json").stdout)
    assert isinstance(queues, list) and len(queues) == 1
    assert (queues[0]["name"], queues[0]["backend"], queues[0]["priority"], queues[0]["selector"]) == (
        "jobs", "redis", 8, "dc=x")
    octoctl(coord.target, "queue", "set", "jobs", "--concurrency", "2")

    history = octoctl(coord.target, "history")
    assert "queue.create" in history.stdout and "jobs" in history.stdout
    entries = octoctl_json(coord.target, "history")
    assert [e["action"] for e in entries] == ["queue.update", "queue.create"]
    assert json.loads(entries[0]["detail"]) == {"before": {"concurrency": 4}, "after": {"concurrency": 2}}


# -- gRPC statuses ------------------------------------------------------------------

def code_of(call: object, request: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)  # type: ignore[operator]
    return info.value.code()  # type: ignore[attr-defined, no-any-return]


def test_admin_statuses(channel: grpc.Channel) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    create = admin.CreateQueue
    assert code_of(create, admin_pb2.CreateQueueRequest(queue=queue_pb2.QueueSpec(
        name="q", backend="redis", url=REDIS_URL, priority=11))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(create, admin_pb2.CreateQueueRequest(queue=queue_pb2.QueueSpec(
        name="bad name", backend="redis", url=REDIS_URL))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(create, admin_pb2.CreateQueueRequest(queue=queue_pb2.QueueSpec(
        name="q", backend="kafka"))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(admin.GetQueue, admin_pb2.GetQueueRequest(name="q")) == grpc.StatusCode.NOT_FOUND
    assert code_of(admin.DeleteQueue, admin_pb2.DeleteQueueRequest(name="q")) == grpc.StatusCode.NOT_FOUND

    created = create(admin_pb2.CreateQueueRequest(queue=queue_pb2.QueueSpec(
        name="q", backend="redis", url=REDIS_URL)), timeout=10)
    assert created.queue.priority == 5
    assert code_of(create, admin_pb2.CreateQueueRequest(queue=queue_pb2.QueueSpec(
        name="q", backend="redis", url=REDIS_URL))) == grpc.StatusCode.ALREADY_EXISTS
    assert code_of(admin.UpdateQueue, admin_pb2.UpdateQueueRequest(
        queue=queue_pb2.QueueSpec(name="q"), update_mask={"paths": ["name"]})) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(admin.Enqueue, admin_pb2.EnqueueRequest(queue="ghost", messages=[b'{"task":"t"}'])) == \
        grpc.StatusCode.NOT_FOUND
    assert code_of(admin.ListAudit, admin_pb2.ListAuditRequest(limit=-1)) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(admin.GetNode, admin_pb2.GetNodeRequest(node_id="ghost")) == grpc.StatusCode.NOT_FOUND


def test_create_queue_priority_zero_is_invalid(channel: grpc.Channel) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    assert code_of(admin.CreateQueue, admin_pb2.CreateQueueRequest(queue=queue_pb2.QueueSpec(
        name="q", backend="redis", url=REDIS_URL, priority=0))) == grpc.StatusCode.INVALID_ARGUMENT


def test_stats_statuses(channel: grpc.Channel) -> None:
    stats = stats_pb2_grpc.StatsServiceStub(channel)
    assert code_of(stats.GetCluster, stats_pb2.GetClusterRequest(window="banana")) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(stats.GetCluster, stats_pb2.GetClusterRequest(window="8d")) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(stats.GetQueueStats, stats_pb2.GetQueueStatsRequest(queue="ghost")) == grpc.StatusCode.NOT_FOUND
    ok = stats.GetCluster(stats_pb2.GetClusterRequest(window="10s"), timeout=10)
    assert ok.window_seconds == 10 and list(ok.queues) == [] and ok.totals[0].succeeded == 0


def test_health_checking_serves(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "octobot.v1.AdminService", "octobot.v1.NodeService", "octobot.v1.StatsService"):
        resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING, service
    assert code_of(health.Check, health_pb2.HealthCheckRequest(service="nope")) == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_services(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                               timeout=10))
    assert len(responses) == 1
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"octobot.v1.AdminService", "octobot.v1.StatsService", "octobot.v1.NodeService",
            "grpc.health.v1.Health"} <= names
    # grpcurl also needs the descriptors, not just the names.
    described = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="octobot.v1.AdminService")]), timeout=10))
    assert described[0].file_descriptor_response.file_descriptor_proto


def test_node_and_apply_statuses(channel: grpc.Channel) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    for call, request in [(admin.CordonNode, admin_pb2.CordonNodeRequest(node_id="ghost")),
                          (admin.UncordonNode, admin_pb2.UncordonNodeRequest(node_id="ghost")),
                          (admin.ForgetNode, admin_pb2.ForgetNodeRequest(node_id="ghost"))]:
        assert code_of(call, request) == grpc.StatusCode.NOT_FOUND
    apply = admin.ApplyQueues
    assert code_of(apply, admin_pb2.ApplyQueuesRequest(queues=[queue_pb2.QueueSpec(
        name="q", backend="redis", url=REDIS_URL, priority=11)])) == grpc.StatusCode.INVALID_ARGUMENT
    twice = [queue_pb2.QueueSpec(name="q", backend="redis", url=REDIS_URL)] * 2
    assert code_of(apply, admin_pb2.ApplyQueuesRequest(queues=twice)) == grpc.StatusCode.INVALID_ARGUMENT
    assert list(admin.ListQueues(admin_pb2.ListQueuesRequest(), timeout=10).queues) == []


@pytest.mark.parametrize("body, error", [
    (f"queues:\n  - {{name: a, backend: redis, url: '{REDIS_URL}'}}\n  - {{name: b, backend: redis, url: '{REDIS_URL}',"
     " priority: 11}\n", "error: queues.yaml: queues[1].priority: priority must be between 1 and 10, got 11"),
    (f"queues:\n  - {{name: a, backend: redis, url: '{REDIS_URL}', colour: red}}\n",
     "error: queues.yaml: queues[0].colour: unknown key"),
    ("queues: [\n", "error: queues.yaml: not valid YAML at line 2"),
])
def test_apply_refuses_a_bad_file_in_one_line(coord: Coordinator, tmp_path: Path, body: str, error: str) -> None:
    path = tmp_path / "queues.yaml"
    path.write_text(body)
    result = octoctl(coord.target, "apply", "-f", str(path), check=False)
    assert result.returncode == 1
    assert one_error_line(result).startswith(error)
    assert octoctl_json(coord.target, "queue", "list") == []


def test_apply_usage_errors_exit_2(coord: Coordinator, tmp_path: Path) -> None:
    assert octoctl(coord.target, "apply", check=False).returncode == 2
    missing = octoctl(coord.target, "apply", "-f", str(tmp_path / "nope.yaml"), check=False)
    assert missing.returncode == 2 and "nope.yaml" in one_error_line(missing)


@pytest.mark.parametrize("module, name", [("octobot.ctl.main", "octoctl"), ("octobot.node.main", "octobot-node"),
                                          ("octobot.coordinator.main", "octobot-coordinator")])
def test_every_command_says_its_version(module: str, name: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, f"{name} {octobot.__version__}\n")


def test_every_listing_takes_yaml(coord: Coordinator) -> None:
    octoctl(coord.target, "queue", "add", "y", "--backend", "redis", "--url", REDIS_URL)
    assert yaml.safe_load(octoctl(coord.target, "node", "list", "-o", "yaml").stdout) == []
    [entry] = yaml.safe_load(octoctl(coord.target, "history", "-o", "yaml").stdout)
    assert (entry["action"], entry["target"]) == ("queue.create", "y")
    # One time format everywhere: RFC 3339 in UTC (JSON and YAML add the fraction of a second).
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", octoctl(coord.target, "history").stdout.splitlines()[1])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", entry["at"])
    assert yaml.safe_load(octoctl(coord.target, "queue", "show", "y", "-o", "yaml").stdout)["state"] == "unserved"
    assert yaml.safe_load(octoctl(coord.target, "stats", "-o", "yaml").stdout)["rows"][0]["queue"] == "y"


def test_queue_rm_asks_first_and_can_purge_the_broker(coord: Coordinator, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    octoctl(coord.target, "queue", "add", "gone", "--backend", "sqlite", "--url", url)
    octoctl(coord.target, "enqueue", "gone", "t.task")
    unconfirmed = octoctl(coord.target, "queue", "rm", "gone", check=False)
    assert unconfirmed.returncode == 2 and "needs confirmation: give --yes" in one_error_line(unconfirmed)
    assert "gone" in octoctl(coord.target, "queue", "list").stdout
    purged = octoctl(coord.target, "queue", "rm", "gone", "--yes", "--purge-broker")
    assert purged.stdout == "queue gone removed (1 messages and 0 dead letters deleted)\n"
    with octobot.Client(url) as client:
        assert client.depth("gone") == 0
