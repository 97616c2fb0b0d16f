"""Bad input and exhausted retries end in the dead letters on every backend,
with their reasons; octoctl lists, replays and purges them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis

import octobot
from support.brokers import BACKENDS, REDIS_URL, cleanup, queue_url
from support.cluster import octoctl, octoctl_json, wait_until
from support.processes import Processes
from octobot.backends import open_backend
from octobot.v1 import admin_pb2, admin_pb2_grpc


@pytest.fixture(params=BACKENDS)
def backend_queue(request: pytest.FixtureRequest, key: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    kind = request.param
    url = queue_url(kind, tmp_path)
    yield kind, url
    cleanup(kind, url, key)


def test_poison_and_failures_are_dead_lettered_and_replayed(procs: Processes, tmp_path: Path, key: str,
                                                            redis_client: redis.Redis,
                                                            backend_queue: tuple[str, str]) -> None:
    kind, url = backend_queue
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    node = procs.node(coord.target, "a", [])
    octoctl(coord.target, "queue", "add", key, "--backend", kind, "--url", url, "--max-retries", "1",
            "--retry-backoff", "0.05", "--max-message-bytes", "2000")

    # Raw producer messages, as any language would send them.
    # 10 MB, as the fault tests demand; beanstalkd refuses jobs over its max-job-size
    # (64 KiB by default) at put time, so there the producer is told, not the node.
    big = 3000 if kind == "beanstalk" else 10 * 1024 * 1024
    oversized = json.dumps({"task": "e2e.record", "args": [key, 0, "x" * big]}).encode()
    raw = open_backend(kind, key, url)
    raw.publish([b"{not json", json.dumps({"task": "nobody.registered.this"}).encode(), oversized,
                 json.dumps({"task": "e2e.flaky", "args": [f"{key}-flaky", 3]}).encode(),
                 # The message's own max_retries beats the queue's: no retry at all.
                 json.dumps({"task": "e2e.fail", "args": [key], "max_retries": 0}).encode()])
    raw.close()
    with octobot.Client(url) as client:  # good work keeps flowing around the poison
        client.enqueue_many(key, [octobot.Envelope.new("e2e.record", [key, i]) for i in range(1, 51)])

    letters = wait_until(lambda: len(d := octoctl_json(coord.target, "dead", "list", key)) == 5 and d,
                         timeout=30, what="five dead letters")
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 50, what="good messages to run")
    reasons = {d["reason"].split(":")[0]: d for d in letters}
    assert set(reasons) == {"not JSON", "unknown task 'nobody.registered.this'",
                            f"message is {len(oversized)} bytes, over the 2000-byte limit",
                            "failed after 2 attempt(s)", "failed after 1 attempt(s)"}, reasons.keys()
    oversized_letter = reasons[f"message is {len(oversized)} bytes, over the 2000-byte limit"]
    assert int(oversized_letter["body_size"]) == len(oversized)  # listed cut to 64 KiB, its size said
    assert int(redis_client.get(f"{key}:attempts")) == 1
    flaky = reasons["failed after 2 attempt(s)"]
    assert "RuntimeError: run 2 fails on purpose" in flaky["error"] and "Traceback" in flaky["error"]
    assert json.loads(flaky["body"])["attempt"] == 1
    assert int(redis_client.get(f"{key}-flaky:attempts")) == 2

    # Replayed, the letter starts over at attempt 0: run 3 fails and is retried, run 4 succeeds.
    assert octoctl(coord.target, "dead", "retry", key, flaky["id"]).stdout.strip() == f"retried 1 dead letters on {key}"
    wait_until(lambda: redis_client.get(f"{key}-flaky:succeeded") == b"1", timeout=30, what="replayed task to succeed")
    assert int(redis_client.get(f"{key}-flaky:attempts")) == 4
    assert len(octoctl_json(coord.target, "dead", "list", key)) == 4

    def counts() -> dict[str, int]:
        rows = octoctl_json(coord.target, "stats", "--queue", key)["rows"]
        return {k: int(rows[0].get(k, 0)) for k in ("rejected", "dead_lettered", "retried", "succeeded")} if rows else {}
    expected = {"rejected": 3, "dead_lettered": 2, "retried": 2, "succeeded": 51}
    wait_until(lambda: counts() == expected, what=f"stats to count {expected}")

    assert octoctl(coord.target, "dead", "purge", key).stdout.strip() == f"purged 4 dead letters from {key}"
    assert octoctl_json(coord.target, "dead", "list", key) == []
    assert [e["action"] for e in octoctl_json(coord.target, "history")][:2] == ["dead.purge", "dead.retry"]
    assert node.alive()


def test_dead_letter_cli_errors(procs: Processes, tmp_path: Path, key: str) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    assert octoctl(coord.target, "dead", "list", "ghost", check=False).returncode == 1
    octoctl(coord.target, "queue", "add", key, "--backend", "sqlite", "--url", f"sqlite:///{tmp_path / 'q.db'}")
    usage = octoctl(coord.target, "dead", "retry", key, check=False)
    assert usage.returncode == 2 and usage.stderr.startswith("error: give dead-letter IDs or --all")
    bad = octoctl(coord.target, "dead", "retry", key, "not-an-id", check=False)
    assert bad.returncode == 1 and "not-an-id" in bad.stderr
    unknown = octoctl(coord.target, "dead", "retry", key, "12345", check=False)  # well formed, no such letter
    assert unknown.returncode == 1 and unknown.stderr.startswith(f"error: retried 0 dead letters on {key}; 1 of the")
    assert octoctl(coord.target, "dead", "retry", key, "--all").stdout.strip() == f"retried 0 dead letters on {key}"


def test_a_huge_dead_letter_is_listed_cut_and_in_pages(procs: Processes, tmp_path: Path, key: str) -> None:
    """A 50 MB dead letter made `dead list` fail (RESOURCE_EXHAUSTED: gRPC's
    64 MB limit) for the whole queue."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL)
    backend = open_backend("redis", key, REDIS_URL)
    try:
        huge = b'{"task": "t", "args": ["' + b"x" * (50 << 20) + b'"]}'
        backend.publish([huge, b"small-1", b"small-2"])
        for delivery in backend.fetch(3, 5.0):
            backend.dead_letter(delivery, "too much")
        with grpc.insecure_channel(coord.target) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            first = admin.ListDeadLetters(admin_pb2.ListDeadLettersRequest(queue=key, limit=2), timeout=30)
            assert [len(d.body) for d in first.letters] == [64 << 10, 7]
            assert [d.body_size for d in first.letters] == [len(huge), 7]
            rest = admin.ListDeadLetters(admin_pb2.ListDeadLettersRequest(
                queue=key, limit=2, page_token=first.next_page_token), timeout=30)
            assert [d.body for d in rest.letters] == [b"small-2"] and rest.next_page_token == ""
            for forged in ("-1", "10000", "9" * 5000, "\u0661", "x"):
                with pytest.raises(grpc.RpcError) as info:
                    admin.ListDeadLetters(admin_pb2.ListDeadLettersRequest(queue=key, page_token=forged), timeout=10)
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        shown = octoctl_json(coord.target, "dead", "list", key)
        assert [d["body_size"] for d in shown] == [str(len(huge)), "7", "7"]
        assert f"({len(huge):,} bytes)" in octoctl(coord.target, "dead", "list", key).stdout
    finally:
        backend.dead_purge()
        backend.close()
        cleanup("redis", REDIS_URL, key)
