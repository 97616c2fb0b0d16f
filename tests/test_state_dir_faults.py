"""A node whose --state-dir turns read-only under it, with a real coordinator,
a real node process and a real read-only file system (a tmpfs remounted
read-only: being root, the test could write through a chmod)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from support.brokers import REDIS_URL
from support.cluster import cached, octoctl, octoctl_json, wait_until
from support.processes import Mount, Processes
from octobot.node.state import StateDir
from support.cluster import all_up, queue_status, write_envelopes


@pytest.fixture
def state_mount(tmpfs: Callable[[str, str], Mount]) -> Mount:
    """tmp_path/node-a (node a's state dir) on its own tmpfs."""
    return tmpfs("node-a", "4m")


def cached_concurrency(state_dir: Path) -> int | None:
    assignment = cached(state_dir)
    return assignment.queues[0].concurrency if assignment and assignment.queues else None


@pytest.mark.parametrize("processes", [1, 2])
def test_a_read_only_state_dir_keeps_the_node_up_and_is_written_when_writable_again(
        procs: Processes, tmp_path: Path, key: str, redis_client: redis.Redis, state_mount: Mount,
        processes: int) -> None:
    """Before the fix, the session thread wrote the assignment cache inside
    the stream loop: the write's OSError ("Read-only file system") killed the
    session thread with a traceback, its stream closed and the coordinator
    marked the node DOWN while its runners kept consuming, and nothing ever
    reconnected it, even once the directory was writable again. With
    --processes the write came before the children were sent the assignment,
    so they never applied it either. Now the node stays UP, applies the
    assignment, warns once and writes the cache when the directory takes
    writes again."""
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    node = procs.node(coord.target, "a", ["dc=x"], extra=("--processes", str(processes)))
    assert node.state_dir == state_mount.path
    wait_until(lambda: all_up(coord.target, 1), what="node up")
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL, "--concurrency", "1")
    wait_until(lambda: cached_concurrency(node.state_dir) == 1, what="the first assignment cached")

    state_mount.remount("ro")
    octoctl(coord.target, "queue", "set", key, "--concurrency", "3")
    wait_until(lambda: (queue_status(coord.target, node.node_id, key) or {}).get("workers") == 3,
               what="the node to apply the new assignment")
    octoctl(coord.target, "enqueue", key, "-f", str(write_envelopes(tmp_path / "e.jsonl", key, range(30))))
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 30, what="the tasks to run")
    # Several heartbeats (0.5 s) past the coordinator's --down-after (4 s): a dead session would show.
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        nodes = octoctl_json(coord.target, "node", "list")
        assert [n["state"] for n in nodes] == ["NODE_STATE_UP"], nodes
        time.sleep(0.5)
    assert cached_concurrency(node.state_dir) == 1, "the directory really refused the write"
    log = node.output()
    warnings = [line for line in log.splitlines() if " WARNING " in line and "state dir" in line]
    assert len(warnings) == 1, warnings
    assert "Read-only file system" in warnings[0]
    assert "Traceback" not in log

    state_mount.remount("rw")
    wait_until(lambda: cached_concurrency(node.state_dir) == 3, what="the cache written once writable")
    # The line is logged just after the write: the file can be seen first.
    log = wait_until(lambda: "writable again" in (out := node.output()) and out, what="the node to say so")
    assert len([line for line in log.splitlines() if "writable again" in line]) == 1
    assert len([line for line in log.splitlines() if " WARNING " in line and "state dir" in line]) == 1
    assert "Traceback" not in log
    assert cached(node.state_dir).generation == node_generation(coord.target)  # type: ignore[union-attr]
    assert node.alive() and all_up(coord.target, 1)


def node_generation(target: str) -> int:
    """The generation the node last said it applied."""
    (node,) = octoctl_json(target, "node", "list")
    return int(node["applied_generation"])


def test_a_credential_set_while_read_only_is_used_and_written_later(state_mount: Mount) -> None:
    """The credential a node gets by joining, or drops when refused, holds in
    memory while the directory refuses it: the session goes on with it."""
    state = StateDir(state_mount.path)
    state.save_credential("first")
    state_mount.remount("ro")
    state.save_credential("second")
    assert state.credential() == "second"
    state.forget_credential()
    assert state.credential() is None
    assert (state_mount.path / "credential").read_text() == "first", "the directory really refused the writes"
    state_mount.remount("rw")
    state.retry()
    assert not (state_mount.path / "credential").exists()
    assert state.credential() is None
