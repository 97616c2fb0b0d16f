"""What a client can make the coordinator do on the network and the disk,
and what it stores: only what an admin allowed (a real coordinator)."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from support.brokers import REDIS_URL, cleanup
from support.cluster import Coordinator, Process, octoctl, wait_until
from support.processes import Processes
from octobot.backends.sqlite import SqliteBackend
from octobot.v1 import admin_pb2, admin_pb2_grpc, queue_pb2


def test_sqlite_queues_are_opened_only_where_allowed(procs: Processes, tmp_path: Path, key: str) -> None:
    """A sqlite queue URL names a file: the coordinator must not create or open
    one anywhere a client chose (it created files anywhere before)."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")  # --sqlite-queue-dir tmp_path
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for url, name in ((f"sqlite:///{elsewhere / 'q.db'}", f"{key}-out"),
                      (f"sqlite:///{tmp_path / 'octobot.db'}", f"{key}-store")):
        octoctl(coord.target, "queue", "add", name, "--backend", "sqlite", "--url", url)
        for args in (["enqueue", name, "t", "--args", "[1]"], ["dead", "list", name]):
            refused = octoctl(coord.target, *args, check=False)
            assert refused.returncode == 1 and "--sqlite-queue-dir" in refused.stderr, refused.stderr
    assert not (elsewhere / "q.db").exists()
    # Nor did it lay a queue's tables into its own store.
    with sqlite3.connect(tmp_path / "octobot.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "messages" not in tables and "dead" not in tables
    # A queue file in the allowed directory is reached (and made if need be).
    allowed = f"sqlite:///{tmp_path / 'queues.db'}"
    octoctl(coord.target, "queue", "add", f"{key}-ok", "--backend", "sqlite", "--url", allowed)
    octoctl(coord.target, "enqueue", f"{key}-ok", "t", "--args", "[1]")
    assert SqliteBackend(f"{key}-ok", allowed).depth() == 1


def test_json_nested_too_deep_is_invalid_argument(procs: Processes, tmp_path: Path, key: str) -> None:
    coord: Coordinator = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL)
    deep = b'{"task": "t", "args": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with grpc.insecure_channel(coord.target) as channel:
        try:
            admin_pb2_grpc.AdminServiceStub(channel).Enqueue(admin_pb2.EnqueueRequest(queue=key, messages=[deep]),
                                                             timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert exc.details() == "message 1: nested too deep (arrays and objects within each other)"
        else:
            raise AssertionError("a message nested 100,000 deep was accepted")


def test_idle_connections_cannot_starve_the_coordinator(tmp_path: Path) -> None:
    """1,100 idle TCP connections used to take all of the usual 1,024
    descriptors: health checks and octoctl failed until they went away. The
    coordinator raises its soft limit to the hard one, and closes connections
    that do not finish their handshake within 10 s."""
    port_file = tmp_path / "port"
    coord = Process(["prlimit", "--nofile=1024:4096", sys.executable, "-m", "octobot.coordinator.main",
                     "--listen", "127.0.0.1:0", "--db", f"sqlite:///{tmp_path / 'octobot.db'}",
                     "--port-file", str(port_file)], tmp_path / "coordinator.log")
    idle: list[socket.socket] = []
    try:
        port = wait_until(lambda: port_file.exists() and port_file.read_text() and int(port_file.read_text()),
                          timeout=30, what="the coordinator to listen")
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(1100)]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == \
                health_pb2.HealthCheckResponse.SERVING
        descriptors = lambda: len(os.listdir(f"/proc/{coord.proc.pid}/fd"))  # noqa: E731
        assert descriptors() > 1100
        wait_until(lambda: descriptors() < 100, timeout=20, what="the idle connections to be closed")
        assert octoctl(f"127.0.0.1:{port}", "queue", "list").returncode == 0
    finally:
        for s in idle:
            s.close()
        coord.terminate()


def test_deleted_queues_leave_no_open_files(procs: Processes, tmp_path: Path, key: str) -> None:
    """300 create, enqueue, delete cycles used to leave 724 descriptors open on
    deleted queues' SQLite files."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    descriptors = lambda: len(os.listdir(f"/proc/{coord.proc.pid}/fd"))  # noqa: E731
    with grpc.insecure_channel(coord.target) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        before = descriptors()
        for i in range(300):
            name = f"{key}-{i}"
            admin.CreateQueue(admin_pb2.CreateQueueRequest(queue=queue_pb2.QueueSpec(
                name=name, backend="sqlite", url=f"sqlite:///{tmp_path / f'q{i}.db'}")), timeout=10)
            admin.Enqueue(admin_pb2.EnqueueRequest(queue=name, messages=[b'{"task": "t"}']), timeout=10)
            admin.DeleteQueue(admin_pb2.DeleteQueueRequest(name=name), timeout=10)
        assert descriptors() < before + 20


def test_a_silent_broker_holds_up_only_its_own_calls(procs: Processes, tmp_path: Path, key: str) -> None:
    """Eight Enqueue calls to a broker that accepts connections and never
    answers made an Enqueue to a healthy Redis wait 39 s (they took every
    thread the coordinator had for broker calls), and took 40-80 s themselves."""
    hole = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def swallow() -> None:
        """Accept every connection and never answer."""
        with contextlib.suppress(OSError):  # the hole closed
            while True:
                held.append(hole.accept()[0])
    threading.Thread(target=swallow, daemon=True).start()
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    silent, healthy = f"{key}-silent", key
    octoctl(coord.target, "queue", "add", silent, "--backend", "redis",
            "--url", f"redis://127.0.0.1:{hole.getsockname()[1]}/0")
    octoctl(coord.target, "queue", "add", healthy, "--backend", "redis", "--url", REDIS_URL)
    message = [b'{"task": "t"}']
    with grpc.insecure_channel(coord.target) as channel, ThreadPoolExecutor(8) as pool:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        stuck = [pool.submit(admin.Enqueue, admin_pb2.EnqueueRequest(queue=silent, messages=message), timeout=120)
                 for _ in range(8)]
        wait_until(lambda: held, timeout=10, what="the calls to reach the silent broker")
        admin.Enqueue(admin_pb2.EnqueueRequest(queue=healthy, messages=message), timeout=10)
        assert not any(f.done() for f in stuck), "the healthy broker's call waited for the silent one's"
        for f in stuck:
            try:
                f.result()
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            else:
                raise AssertionError("an Enqueue to a silent broker succeeded")
    hole.close()
    cleanup("redis", REDIS_URL, healthy)
