"""No task is lost: a node killed with SIGKILL mid-run, and a broker restarted
mid-run, on every broker. Real processes, real brokers."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from support.brokers import BACKENDS, PrivateBroker, cleanup, queue_url, restart_rabbitmq
from support.cluster import octoctl, wait_until
from support.processes import Processes
from octobot.backends import open_backend

TASKS = 2000
CONCURRENCY = 8
# Unacked messages a node can hold: running or buffered (<= concurrency) plus
# finished ones whose batched ack had not gone out yet (<= concurrency).
IN_FLIGHT_BOUND = 2 * CONCURRENCY


def publish_tasks(kind: str, url: str, queue: str, key: str, sleep: float) -> None:
    producer = open_backend(kind, queue, url)
    bodies = [json.dumps({"task": "e2e.record", "args": [key, i, sleep]}).encode() for i in range(TASKS)]
    for start in range(0, TASKS, 500):
        producer.publish(bodies[start:start + 500])
    producer.close()


def add_queue(target: str, kind: str, url: str, queue: str) -> None:
    # A short visibility timeout so Redis, SQLite and beanstalk (TTR) hand a dead
    # node's messages to another within seconds; AMQP does it when the connection drops.
    octoctl(target, "queue", "add", queue, "--backend", kind, "--url", url, "--concurrency", str(CONCURRENCY),
            "--option", "visibility_timeout=2")


def runs(redis_client: redis.Redis, key: str) -> dict[int, int]:
    return {int(i): int(n) for i, n in redis_client.hgetall(f"{key}:runs").items()}


@pytest.fixture(params=BACKENDS)
def shared_queue(request: pytest.FixtureRequest, key: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    kind, url = request.param, queue_url(request.param, tmp_path)
    yield kind, url
    cleanup(kind, url, key)


def test_sigkill_loses_nothing(procs: Processes, tmp_path: Path, key: str, redis_client: redis.Redis,
                               shared_queue: tuple[str, str]) -> None:
    kind, url = shared_queue
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    victim = procs.node(coord.target, "victim", [])
    add_queue(coord.target, kind, url, key)
    publish_tasks(kind, url, key, key, 0.01)

    wait_until(lambda: redis_client.hlen(f"{key}:runs") >= TASKS // 2, timeout=60, what="half the tasks")
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    done_at_kill = redis_client.hlen(f"{key}:runs")
    assert done_at_kill < TASKS, "the kill came too late to test anything"

    procs.node(coord.target, "rescuer", [])
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == TASKS, timeout=60, what="every task to run")
    counts = runs(redis_client, key)
    assert set(counts) == set(range(TASKS)), "every task ran at least once"
    duplicates = sum(counts.values()) - TASKS
    assert duplicates <= IN_FLIGHT_BOUND, f"{duplicates} duplicates, more than could be in flight"


@pytest.fixture(params=["redis", "amqp", "beanstalk"])
def restartable(request: pytest.FixtureRequest, key: str, tmp_path: Path) -> Iterator[tuple[str, str, object]]:
    kind = request.param
    if kind == "amqp":
        url = queue_url(kind, tmp_path)
        yield kind, url, lambda: restart_rabbitmq(down_for=2)
        cleanup(kind, url, key)
        return
    broker = PrivateBroker(kind, tmp_path)

    def restart() -> None:
        broker.stop()
        time.sleep(2)
        broker.start()

    yield kind, broker.url, restart
    broker.stop()


def test_broker_restart_loses_nothing(procs: Processes, tmp_path: Path, key: str, redis_client: redis.Redis,
                                      restartable: tuple[str, str, object]) -> None:
    kind, url, restart = restartable
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    node = procs.node(coord.target, "a", [])
    add_queue(coord.target, kind, url, key)
    publish_tasks(kind, url, key, key, 0.005)

    wait_until(lambda: redis_client.hlen(f"{key}:runs") >= TASKS // 4, timeout=60, what="a quarter of the tasks")
    restart()  # type: ignore[operator]
    back = redis_client.hlen(f"{key}:runs")
    assert back < TASKS, "the restart came too late to test anything"
    # Consumers reconnect with a backoff capped at 5 s.
    wait_until(lambda: redis_client.hlen(f"{key}:runs") > back, timeout=8, what="processing to resume")
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == TASKS, timeout=90, what="every task after the restart")
    counts = runs(redis_client, key)
    assert set(counts) == set(range(TASKS))
    assert sum(counts.values()) - TASKS <= IN_FLIGHT_BOUND
    # One log line per state change, not one per reconnect attempt.
    log = node.output()
    assert log.count("broker unavailable") == 1 and log.count("broker connection restored") == 1, log[-3000:]


def test_sigterm_finishes_running_tasks_and_gives_back_the_rest(
        procs: Processes, tmp_path: Path, key: str, redis_client: redis.Redis,
        shared_queue: tuple[str, str]) -> None:
    kind, url = shared_queue
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    node = procs.node(coord.target, "a", [])
    octoctl(coord.target, "queue", "add", key, "--backend", kind, "--url", url, "--concurrency", "2")
    producer = open_backend(kind, key, url)
    producer.publish([json.dumps({"task": "e2e.record", "args": [key, i, 1.5]}).encode() for i in range(6)])
    wait_until(lambda: int(redis_client.get(f"{key}:running") or 0) == 2, what="two tasks running")

    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(timeout=30) == 0
    assert runs(redis_client, key) == {0: 1, 1: 1}, "the running tasks finished, nothing else started"
    assert "left unacked" not in node.output()
    # The unstarted four are back on the broker for the next consumer.
    wait_until(lambda: producer.depth() == 4, what="four messages back in the queue")
    producer.close()
