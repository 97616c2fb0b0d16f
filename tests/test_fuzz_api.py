"""Fuzz a real coordinator process with random and invalid requests for every
method of its services, built from the message descriptors: strings empty,
huge or of any Unicode, integers at their extremes, floats NaN and infinite,
nested messages, and for NodeService random message sequences over Connect.

Every answer must be a status the API documents: never UNKNOWN or INTERNAL
(an unhandled exception); the coordinator must still be alive, healthy and
aggregating stats afterwards. It is plaintext on loopback, where an anonymous
caller may call everything. Queue URLs only ever point at loopback: SQLite
files in the test's directory or ports nothing listens on.

330 examples per method with a fixed seed: over 10,000 calls (28 methods,
990 Connect streams, and bytes that do not parse on every method). Set
OCTOBOT_FUZZ_EXAMPLES to run another number, with a random seed instead of
the fixed one (bench/fuzz.py does, at length). Afterwards no stored queue
spec may fail the coordinator's own validation.
"""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, message, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from support.cluster import Coordinator, wait_until
from octobot import queue_specs
from octobot.coordinator import limits
from octobot.histogram import Histogram
from octobot.v1 import admin_pb2, admin_pb2_grpc, auth_pb2, node_pb2, queue_pb2, stats_pb2, stats_pb2_grpc

EXAMPLES = int(os.environ.get("OCTOBOT_FUZZ_EXAMPLES", "0")) or 330
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize="OCTOBOT_FUZZ_EXAMPLES" not in os.environ,
                    database=None, suppress_health_check=list(HealthCheck))
TIMEOUT = 20.0
# Statuses the API documents. DEADLINE_EXCEEDED is not one: every call answers within TIMEOUT.
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION,
           grpc.StatusCode.UNAVAILABLE,  # a queue's broker is unreachable
           grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.OUT_OF_RANGE}
# Nor RESOURCE_EXHAUSTED: requests stay far below the 64 MiB limit, and an
# error message quoting a huge argument must be cut rather than overflow the
# status's metadata.
SERVICES = [d.services_by_name[name] for d, name in (
    (admin_pb2.DESCRIPTOR, "AdminService"), (stats_pb2.DESCRIPTOR, "StatsService"),
    (node_pb2.DESCRIPTOR, "NodeService"), (auth_pb2.DESCRIPTOR, "TokenService"))]
METHODS = [m for s in SERVICES for m in s.methods if not m.client_streaming]
# Seeded before each method (fz-sqlite on a real SQLite broker), or unknown.
QUEUES = ["fz-sqlite", "fz-redis", "fz-sqlite", "fz-redis", "fz-new", "ghost"]
NODES = ["fz-node-1", "fz-node-2", "ghost"]
# Ids Join is fuzzed with: once joined, a node must connect with its credential.
JOINERS = ["fz-joiner", "fz-joiner-2"]
# Ports nothing listens on: the brokers there are unreachable.
DEAD_URLS = {"redis": ["redis://127.0.0.1:1/0", "redis://127.0.0.1:1/99999", "redis://127.0.0.1:70000/0"],
             "amqp": ["amqp://guest:guest@127.0.0.1:1/%2F", "amqp://127.0.0.1:1/x?heartbeat=-1"],
             "beanstalk": ["beanstalk://127.0.0.1:1", "beanstalk://127.0.0.1:0"]}
T = st.SearchStrategy[Any]


# -- strategies ----------------------------------------------------------------------

def texts() -> T:
    odd = ["", " ", "\x00", "a\nb", "é" * 200, "x" * 70_000, "%s%n", "../..", "${env:HOME}"]
    return st.one_of(st.text(max_size=20), st.text(st.characters(codec="utf-8"), max_size=300), st.sampled_from(odd))


def durations() -> T:
    return st.one_of(st.sampled_from(["", "1s", "10s", "1m", "15m", "1h", "24h", "7d", "0s", "1.5s", "8d",
                                      "9" * 400 + "s", "1e9d", "-1m", "1m\n", "１m", "nan", "inf"]), texts())


def _named(*values: str) -> T:
    """Mostly a name that exists or means something, so requests get past the first check."""
    known = st.sampled_from(values)
    return st.one_of(known, known, texts())


# Strings that reach deeper when they name something that exists.
BY_FIELD: dict[str, T] = {
    "name": _named(*QUEUES), "queue": _named(*QUEUES), "node_id": _named(*NODES),
    "backend": _named("sqlite", "redis", "amqp", "beanstalk"),
    "paths": _named(*queue_specs.UPDATABLE, "name"),  # UpdateQueueRequest.update_mask
    "window": durations(), "range": durations(), "step": durations(), "recent": durations(),
    "by": _named("node", "dc", "zone", "a/b"), "selector": _named("dc=east", "dc in (a,b),!gpu", "((", "a" * 5000),
    "role": _named("admin", "operator", "viewer", "node"),
}
SCALARS: dict[int, Callable[[], T]] = {
    descriptor.FieldDescriptor.TYPE_INT32: lambda: _ints(32, True),
    descriptor.FieldDescriptor.TYPE_SINT32: lambda: _ints(32, True),
    descriptor.FieldDescriptor.TYPE_SFIXED32: lambda: _ints(32, True),
    descriptor.FieldDescriptor.TYPE_INT64: lambda: _ints(64, True),
    descriptor.FieldDescriptor.TYPE_SINT64: lambda: _ints(64, True),
    descriptor.FieldDescriptor.TYPE_SFIXED64: lambda: _ints(64, True),
    descriptor.FieldDescriptor.TYPE_UINT32: lambda: _ints(32, False),
    descriptor.FieldDescriptor.TYPE_FIXED32: lambda: _ints(32, False),
    descriptor.FieldDescriptor.TYPE_UINT64: lambda: _ints(64, False),
    descriptor.FieldDescriptor.TYPE_FIXED64: lambda: _ints(64, False),
    descriptor.FieldDescriptor.TYPE_DOUBLE: lambda: st.one_of(st.sampled_from([0.0, 0.5, 1.0, 30.0]), st.floats()),
    descriptor.FieldDescriptor.TYPE_FLOAT: lambda: st.floats(width=32),
    descriptor.FieldDescriptor.TYPE_BOOL: st.booleans,
    descriptor.FieldDescriptor.TYPE_ENUM: lambda: _ints(32, True),  # open enums: unknown values too
    descriptor.FieldDescriptor.TYPE_BYTES: lambda: st.one_of(
        st.binary(max_size=64), st.sampled_from([b'{"task": "t"}', b'{"task": "t", "args": [1], "attempt": 99}',
                                                 b"{}", b"[]", b"\xff", b"x" * 2_000_000,
                                                 b'{"task": "t", "args": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"])),
}


def _ints(bits: int, signed: bool) -> T:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    # Mostly small: most fields take small numbers, and a request with every one wrong stops at the first.
    return st.one_of(st.sampled_from([0, 1, 2, 5, 10, 100]), st.integers(0, 1000), st.integers(low, high),
                     st.sampled_from([low, high, high - 1, -1 if signed else 2**bits - 2]))


def _value(field: descriptor.FieldDescriptor, depth: int) -> T:
    if field.type == descriptor.FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    if field.type == descriptor.FieldDescriptor.TYPE_STRING:
        return BY_FIELD[field.name] if field.name in BY_FIELD else texts()
    return SCALARS[field.type]()


def messages(desc: descriptor.Descriptor, depth: int = 0) -> T:
    """Random messages of ``desc``: any subset of its fields set, any values."""
    special = SPECIAL.get(desc.full_name)
    if special is not None:
        return special(depth)
    return _generic(desc, depth)


def _generic(desc: descriptor.Descriptor, depth: int) -> T:
    cls = message_factory.GetMessageClass(desc)
    if depth > 3:
        return st.just(cls())
    fields: dict[str, T] = {}
    for f in desc.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
            fields[f.name] = st.dictionaries(_value(key, depth), _value(value, depth), max_size=4)
        elif f.is_repeated:
            fields[f.name] = st.lists(_value(f, depth), max_size=4 if depth else 8)
        else:
            fields[f.name] = _value(f, depth)
    # Every field set, or any of them (unset ones take their defaults).
    values = st.one_of(st.fixed_dictionaries(fields), st.fixed_dictionaries({}, optional=fields))
    return values.map(lambda v: _build(cls, v))


def _build(cls: type[message.Message], values: dict[str, Any]) -> message.Message:
    msg = cls()
    for name, value in values.items():
        field = getattr(msg, name)
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, message.Message):
                    field[k].CopyFrom(v)
                else:
                    field[k] = v
        elif isinstance(value, list):
            field.extend(value)
        elif isinstance(value, message.Message):
            field.CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


@st.composite
def queue_specs_strategy(draw: st.DrawFn, depth: int) -> queue_pb2.QueueSpec:
    """A random QueueSpec whose URL points at loopback only."""
    spec: queue_pb2.QueueSpec = draw(_generic(queue_pb2.QueueSpec.DESCRIPTOR, depth))
    backend = spec.backend if spec.backend in DEAD_URLS or spec.backend == "sqlite" else "redis"
    spec.url = draw(st.sampled_from(_urls(backend) if draw(st.booleans()) else _urls()))
    return spec


def updates(depth: int) -> T:
    """A changed backend without a URL takes SQLite's default file, in the
    coordinator's working directory (a network broker's is refused).
    Such an update names the (loopback-only) URL too."""
    def with_url(request: admin_pb2.UpdateQueueRequest) -> admin_pb2.UpdateQueueRequest:
        if "backend" in request.update_mask.paths and "url" not in request.update_mask.paths:
            request.update_mask.paths.append("url")
        return request
    return _generic(admin_pb2.UpdateQueueRequest.DESCRIPTOR, depth).map(with_url)


def _urls(backend: str | None = None) -> list[str]:
    sqlite = [f"sqlite:///{WORKDIR}/queues.db", f"sqlite:///{WORKDIR}/missing/dir/queues.db", f"sqlite:///{WORKDIR}"]
    if backend == "sqlite":
        return sqlite
    if backend is not None:
        return DEAD_URLS[backend]
    return sqlite + [u for urls in DEAD_URLS.values() for u in urls] + ["redis://127.0.0.1:1/0 x", "nonsense"]


@st.composite
def plausible_reports(draw: st.DrawFn) -> node_pb2.StatsReport:
    """Reports a node could make, with values at and past the bounds."""
    report = node_pb2.StatsReport()
    report.at.FromSeconds(int(time.time()) - draw(st.sampled_from([0, 5, 1000, 2000, -3600])))
    for queue in draw(st.lists(st.sampled_from(QUEUES), max_size=3)):
        h = Histogram()
        for v in draw(st.lists(st.floats(allow_nan=True), max_size=5)):
            h.record(v)
        n = max(h.count, draw(st.sampled_from([0, 1, 10**9])))
        report.samples.add(queue=queue, succeeded=n, failed=draw(st.sampled_from([0, 10**9, 10**9 + 1])),
                           in_flight=draw(st.sampled_from([0, 10**6, 2**32 - 1])),
                           backlog=draw(st.sampled_from([-1, 0, 2**53, 2**63 - 1, -(2**63)])),
                           run_time=h.to_proto(), wait_time=h.to_proto(), end_to_end=h.to_proto())
    return report


def stats_reports(depth: int) -> T:
    return st.one_of(plausible_reports(), _generic(node_pb2.StatsReport.DESCRIPTOR, depth))


def hellos(depth: int) -> T:
    valid = st.builds(lambda node_id, labels: node_pb2.Hello(node_id=node_id, hostname="fz", labels=labels),
                      st.sampled_from(NODES[:2]), st.dictionaries(st.sampled_from(["dc", "zone"]),
                                                                   st.sampled_from(["east", "west", ""])))
    return st.one_of(valid, _generic(node_pb2.Hello.DESCRIPTOR, depth))


SPECIAL: dict[str, Callable[[int], T]] = {
    "octobot.v1.JoinRequest": lambda depth: st.builds(node_pb2.JoinRequest, node_id=_named(*JOINERS)),
    "octobot.v1.QueueSpec": queue_specs_strategy,
    "octobot.v1.UpdateQueueRequest": updates,
    "octobot.v1.StatsReport": stats_reports,
    "octobot.v1.Hello": hellos,
}


def node_streams() -> T:
    """What a node might send on Connect: mostly a Hello first, then anything."""
    first = st.one_of(hellos(1).map(lambda h: node_pb2.ConnectRequest(hello=h)), messages(node_pb2.ConnectRequest.DESCRIPTOR))
    return st.builds(lambda a, rest: [a, *rest], first, st.lists(messages(node_pb2.ConnectRequest.DESCRIPTOR), max_size=6))


# -- the coordinator -------------------------------------------------------------------

WORKDIR = Path()


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coordinator]:
    global WORKDIR
    WORKDIR = tmp_path_factory.mktemp("fuzz")
    c = Coordinator(f"sqlite:///{WORKDIR / 'octobot.db'}", WORKDIR, metrics=True)
    try:
        yield c
    finally:
        c.terminate()
        assert "Traceback" not in c.output(), c.output()[-6000:]


@pytest.fixture(scope="module")
def channel(coordinator: Coordinator) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(coordinator.target, options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
        yield ch


def _seed(channel: grpc.Channel) -> None:
    """Queues and nodes the requests name, again: an earlier method may have deleted them."""
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    for name, url in (("fz-sqlite", _urls("sqlite")[0]), ("fz-redis", DEAD_URLS["redis"][0])):
        spec = queue_pb2.QueueSpec(name=name, backend=url.split(":")[0], url=url)
        assert _status(lambda: admin.CreateQueue(admin_pb2.CreateQueueRequest(queue=spec), timeout=TIMEOUT)) in (
            grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS)
    for node_id in NODES[:2]:
        hello = node_pb2.ConnectRequest(hello=node_pb2.Hello(node_id=node_id, hostname="fz", labels={"dc": "east"}))
        assert _status(lambda: list(_connect(channel)(iter([hello]), timeout=TIMEOUT))) == grpc.StatusCode.OK


def _connect(channel: grpc.Channel) -> grpc.StreamStreamMultiCallable:
    return channel.stream_stream("/octobot.v1.NodeService/Connect", request_serializer=_serializer,
                                 response_deserializer=node_pb2.ConnectResponse.FromString)


def _status(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


def _path(method: descriptor.MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _serializer(msg: message.Message) -> bytes:
    return msg.SerializeToString()


# -- the fuzzing -----------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_unary_and_server_streaming(method: descriptor.MethodDescriptor, coordinator: Coordinator,
                                    channel: grpc.Channel) -> None:
    _seed(channel)
    response = message_factory.GetMessageClass(method.output_type)
    if method.server_streaming:
        stream = channel.unary_stream(_path(method), request_serializer=_serializer,
                                      response_deserializer=response.FromString)

        def call(request: message.Message) -> None:
            responses = stream(request, timeout=TIMEOUT)
            try:
                next(responses)  # a stream (Watch) answers at once, then every interval
            finally:
                responses.cancel()
    else:
        unary = channel.unary_unary(_path(method), request_serializer=_serializer,
                                    response_deserializer=response.FromString)

        def call(request: message.Message) -> None:
            unary(request, timeout=TIMEOUT)

    @SETTINGS
    @given(messages(method.input_type))
    def fuzz(request: message.Message) -> None:
        status = _status(lambda: call(request))
        assert status in ALLOWED, f"{method.name}({request!r:.2000}) -> {status}"

    fuzz()
    assert coordinator.alive()


def test_connect(coordinator: Coordinator, channel: grpc.Channel) -> None:
    _seed(channel)
    connect = _connect(channel)

    @settings(SETTINGS, max_examples=EXAMPLES * 3)
    @given(node_streams())
    def fuzz(sent: list[node_pb2.ConnectRequest]) -> None:
        # The stream ends when the node's side does: every message has been read by then.
        status = _status(lambda: list(connect(iter(sent), timeout=TIMEOUT)))
        assert status in ALLOWED, f"Connect({sent!r:.3000}) -> {status}"

    fuzz()
    assert coordinator.alive()


# Bytes no request parses as: a field number 0, a truncated varint, a length past the end.
MALFORMED = [b"\x00", b"\x08\xff", b"\x0a\x05ab", b"\xff" * 40]


@pytest.mark.parametrize("method", [m for s in SERVICES for m in s.methods] + [
    health_pb2.DESCRIPTOR.services_by_name["Health"].methods_by_name["Check"]],
    ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_bytes_that_do_not_parse_are_invalid_argument(method: descriptor.MethodDescriptor,
                                                      channel: grpc.Channel) -> None:
    """Not UNKNOWN with a DecodeError, as gRPC answers by itself; on a stream
    too, after a good first message."""
    for raw in MALFORMED:
        if method.client_streaming:
            hello = node_pb2.ConnectRequest(hello=node_pb2.Hello(node_id="fz-malformed", hostname="fz"))
            call = channel.stream_stream(_path(method))
            status = _status(lambda: list(call(iter([hello.SerializeToString(), raw]), timeout=TIMEOUT)))
        elif method.server_streaming:
            status = _status(lambda: list(channel.unary_stream(_path(method))(raw, timeout=TIMEOUT)))
        else:
            status = _status(lambda: channel.unary_unary(_path(method))(raw, timeout=TIMEOUT))
        assert status == grpc.StatusCode.INVALID_ARGUMENT, f"{method.name}({raw!r}) -> {status}"


def test_still_serving_and_aggregating(coordinator: Coordinator, channel: grpc.Channel) -> None:
    """After all that: healthy, answering, and a good node's report still lands."""
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT).status == \
        health_pb2.HealthCheckResponse.SERVING
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    # Nothing the fuzzing stored fails the coordinator's own validation.
    for spec in admin.ListQueues(admin_pb2.ListQueuesRequest(), timeout=TIMEOUT).queues:
        queue_specs.validate(spec)
    report = node_pb2.StatsReport(samples=[stats_pb2.QueueSample(queue="fz-check", succeeded=7)])
    report.at.GetCurrentTime()
    hello = node_pb2.Hello(node_id="fz-good", hostname="fz", labels={"dc": "good"})
    sent = [node_pb2.ConnectRequest(hello=hello), node_pb2.ConnectRequest(stats=report)]
    list(_connect(channel)(iter(sent), timeout=TIMEOUT))
    stats = stats_pb2_grpc.StatsServiceStub(channel)

    def landed() -> bool:
        cluster = stats.GetCluster(stats_pb2.GetClusterRequest(window="1m", by="dc"), timeout=TIMEOUT)
        return any(g.queue == "fz-check" and g.group == "good" and g.succeeded == 7 for g in cluster.groups)

    wait_until(landed, timeout=15, what="the good node's report in GetCluster")
    # What the fuzzing nodes sent out of bounds was counted, by the fixed reasons only.
    with urllib.request.urlopen(coordinator.metrics_url, timeout=TIMEOUT) as resp:
        families = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
    refused = families["octobot_rejected_node_messages"].samples
    assert refused and {s.labels["reason"] for s in refused} <= set(limits.REASONS)
    assert coordinator.alive()
