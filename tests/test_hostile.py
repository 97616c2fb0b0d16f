"""What a client can make the coordinator do on the network and the disk,
and what it stores: only what an admin allowed (a real coordinator)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc

from cluster import Coordinator, octoctl
from conftest import Processes
from octobot.backends.sqlite import SqliteBackend
from octobot.v1 import admin_pb2, admin_pb2_grpc


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
    octoctl(coord.target, "queue", "add", key, "--backend", "redis")
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
